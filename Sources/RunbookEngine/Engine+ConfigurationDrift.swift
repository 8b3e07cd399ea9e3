import Foundation
import RunbookProcess
import RunbookState

/// A done action whose command, made from today's configuration, is not the one it was done
/// with (the VPC's CIDR changed in the file after `run network`).
package struct ConfigurationDrift: Sendable, Hashable {
  package var step: String
  package var action: String
  /// The command as recorded when the action was done, and as today's configuration makes it
  /// (exports as `<NAME>`, secrets masked, without the tool's global options).
  package var recorded: String
  package var today: String

  /// The two commands cut to where they differ, a word of context before (`… --cidr-block
  /// 10.0.0.0/16 …` against `… --cidr-block 10.1.0.0/16 …`).
  package var difference: (recorded: String, today: String) {
    let old = recorded.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
    let new = today.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
    var prefix = 0
    while prefix < min(old.count, new.count), old[prefix] == new[prefix] { prefix += 1 }
    var suffix = 0
    while suffix < min(old.count, new.count) - prefix,
      old[old.count - 1 - suffix] == new[new.count - 1 - suffix]
    {
      suffix += 1
    }
    func cut(_ words: [String]) -> String {
      let start = max(0, prefix - 1)
      let end = words.count - suffix
      let middle = words[start..<max(start, end)].joined(separator: " ")
      return (start > 0 ? "… " : "") + middle + (end < words.count ? " …" : "")
    }
    return (cut(old), cut(new))
  }
}

extension Engine {
  /// The form of a write's command kept in its record, to notice later that the configuration
  /// changed under it: exports as `<NAME>` (an export a later step records again, such as the
  /// task definition an update moves a service to, is not a change of the configuration), secrets
  /// masked, without the tool's global options (another `--endpoint-url` or `--profile` makes
  /// the same resource). Nil for what a run does again anyway (repeatable actions, procedures).
  func recordedCommand(_ action: Action) -> String? {
    guard case .write = action.effect, action.procedure == nil, !action.repeatable else {
      return nil
    }
    var plain = resolver
    plain.toolArguments = [:]
    return plain.display(action.command, values: [:])
  }

  /// Every done action of `steps` whose recorded command differs from today's. Actions recorded
  /// before commands were kept in the checkpoint cannot be compared and are left out.
  package func configurationDrift(_ steps: [any Step<Configuration>], checkpoint: Checkpoint?)
    -> [ConfigurationDrift]
  {
    guard let checkpoint else { return [] }
    return steps.flatMap { step in
      step.actions(for: deployment).compactMap { action -> ConfigurationDrift? in
        guard let record = checkpoint.record(step.id, action.name), record.status == .done,
          let recorded = record.command, let today = recordedCommand(action), recorded != today
        else { return nil }
        return ConfigurationDrift(
          step: step.id, action: action.name, recorded: recorded, today: today)
      }
    }
  }
}
