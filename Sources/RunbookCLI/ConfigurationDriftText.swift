import Foundation
import RunbookEngine

/// How `run` and `plan` show done actions that today's configuration would run otherwise.
enum ConfigurationDriftText {
  /// Each action with the part of its command that differs, recorded against today's.
  static func actions(_ drift: [ConfigurationDrift], style: Style) -> [String] {
    drift.flatMap { item -> [String] in
      let (recorded, today) = item.difference
      return [
        "  \(item.step)/\(item.action)",
        "    recorded: " + recorded,
        "    today:    " + style.yellow(today),
      ]
    }
  }

  /// What converges the deployment with the file, for the steps of `drift`.
  static func advice(_ drift: [ConfigurationDrift]) -> String {
    var steps: [String] = []
    for item in drift where !steps.contains(item.step) { steps.append(item.step) }
    let names = steps.joined(separator: " ")
    return
      "they are not run again by themselves (AWS keeps what they made). To converge: revert the change in the configuration file; or apply a changed setting with 'runbook run --refresh \(names)' ('runbook plan --refresh \(names)' shows what it runs again; it refuses to replace a resource); or make them anew with it: 'runbook destroy \(names)' (deletes what the step made), then 'runbook run \(names)'"
  }
}
