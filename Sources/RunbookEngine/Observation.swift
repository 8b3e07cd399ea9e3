import Foundation
import RunbookProcess
import RunbookState

/// How `drift` reads back what a done action made, and what today's configuration expects of it.
package struct Observation: Sendable, Hashable {
  /// A read of the resource (an export names it); its output is compared, words apart from
  /// spacing, with `expected`.
  package var command: Command
  /// What the read should print (exports are filled in).
  package var expected: Argument
  /// What the read prints, in words, for a finding (`cidr and zone`).
  package var describes: String
  /// Error codes meaning the resource is gone.
  package var missingErrors: Set<String>
  /// The read prints one row per line in no fixed order (a group's rules): rows are compared as
  /// a set, each row's words apart from spacing; `expected` has one row per line.
  package var unordered = false
  /// A read run before `command` that proves the resource exists: it fails with one of
  /// `missingErrors`, or prints nothing (`None`), when the resource is gone. With it, a
  /// `command` that prints nothing is `changed` (`none`), not missing (a group without rules).
  package var presence: Command? = nil
  /// The read prints what the checkpoint recorded for the action (a rule's id, a code hash),
  /// not what the configuration says: `expected` is then not used.
  package var expectsRecordedValue = false
  /// A regular expression applied to the read's output before it is compared: its groups (those
  /// that took part in the match) joined by spaces are what is compared (a JSON document inside
  /// an attribute, whose key order and quoting vary). Nil: the output as it is.
  package var extract: String? = nil
  /// What converges a finding of this resource when running the action again does not (text;
  /// exports are filled in). Set, a `changed` finding is the operator's to converge as it says
  /// (a rule added by hand, which the tool never revokes): `run --refresh` leaves it, neither
  /// refusing nor running the action. Nil: `runbook run --refresh STEP` where running the action
  /// again converges it.
  package var converge: Argument? = nil

  package init(
    _ command: Command, expected: Argument, describes: String, missingErrors: Set<String>
  ) {
    self.command = command
    self.expected = expected
    self.describes = describes
    self.missingErrors = missingErrors
  }
}

extension Action {
  /// This action, with the read `drift` makes of its resource.
  package func observed(by observation: Observation) -> Action {
    var action = self
    action.observation = observation
    return action
  }
}

/// A resource a done action made that AWS no longer holds as today's configuration would make it,
/// or (`extra`) a resource carrying this deployment's tags that the checkpoint does not record.
package struct DriftFinding: Codable, Sendable, Hashable {
  package var step: String
  package var action: String
  /// `missing`, `changed` or `extra`.
  package var kind: String
  /// What is compared (`cidr and zone`).
  package var field: String
  package var expected: String
  /// What AWS has (absent when missing).
  package var actual: String?
  /// The resource's id, as the checkpoint records it (for `extra`: as AWS names it).
  package var resource: String?
  /// The command that converges it (`runbook run --refresh network`, or for an `extra` the
  /// command deleting it). `drift` itself never runs it.
  package var converge: String?
}

/// The resources carrying this deployment's tags, for the `extra` findings of ``Engine/drift(_:inventory:)``.
package struct DriftInventory: Sendable {
  /// A read printing one row per tagged resource: its id (an ARN) and the `step/action` tag it
  /// carries (`None` or nothing when it has none).
  package var command: Command
  /// Whether the resource `id` is one the checkpoint records, given every value the checkpoint
  /// holds (exports and the actions' results).
  package var isRecorded: @Sendable (_ id: String, _ recorded: Set<String>) -> Bool
  /// The command that deletes the resource `id` (shown, never run).
  package var deletion: @Sendable (_ id: String) -> String

  package init(
    command: Command,
    isRecorded: @escaping @Sendable (_ id: String, _ recorded: Set<String>) -> Bool,
    deletion: @escaping @Sendable (_ id: String) -> String
  ) {
    self.command = command
    self.isRecorded = isRecorded
    self.deletion = deletion
  }
}

extension Engine {
  /// Reads every resource of `steps` that the checkpoint records as done and that its action
  /// knows how to read back (``Observation``), and compares it with today's configuration. Reads
  /// only: no lock, no write.
  package func drift(_ steps: [any Step<Configuration>]) async throws -> [DriftFinding] {
    try await drift(steps, inventory: nil)
  }

  /// ``drift(_:)``, and with an `inventory`, the resources tagged with this deployment and
  /// lineage whose `step/action` tag names one of `steps` and that the checkpoint does not
  /// record (`extra`).
  package func drift(_ steps: [any Step<Configuration>], inventory: DriftInventory?) async throws
    -> [DriftFinding]
  {
    let checkpoint = try await loadCheckpoint()
    let values = contextValues(checkpoint)
    var findings: [DriftFinding] = []
    // The exports of resources found missing: a read of what is set on them (a VPC's attribute)
    // would fail with their own not-found error, and their finding says it already.
    var gone = Set<String>()
    for step in steps {
      for action in step.actions(for: deployment) {
        guard let observation = action.observation,
          let record = checkpoint?.record(step.id, action.name), record.status == .done,
          gone.isDisjoint(with: observation.command.exportReferences)
        else { continue }
        // Compared with what the action recorded: nothing to compare when it recorded no such
        // value (a function's code settled by the create, with no hash of its own).
        if observation.expectsRecordedValue,
          !(action.capture?.accepts(record.value ?? "") ?? (record.value != nil))
        {
          continue
        }
        try checkInterrupted()
        if let finding = try await observe(
          observation, step: step.id, action: action.name, recorded: record.value, values: values)
        {
          var finding = finding
          if finding.kind == "missing", let export = action.capture?.export { gone.insert(export) }
          if finding.kind == "changed", observation.converge == nil, !action.appliesSetting {
            // What a create made cannot be made again in place: `run --refresh` refuses it.
            finding.converge =
              "set it back in AWS, or make the configuration say what AWS has ('runbook run --refresh \(step.id)' does not replace it: 'runbook destroy \(step.id)', then 'runbook run \(step.id)' does)"
          }
          findings.append(finding)
        }
      }
    }
    if let inventory, let checkpoint {
      findings += try await extras(inventory, steps: steps.map(\.id), checkpoint, values)
    }
    return findings
  }

  /// One action's read and its comparison; nil when AWS has what is expected.
  private func observe(
    _ observation: Observation, step: String, action: String, recorded: String?,
    values: [String: String]
  ) async throws -> DriftFinding? {
    let expectedText =
      observation.expectsRecordedValue
      ? (recorded ?? "") : resolver.display(observation.expected, values: values)
    let expected =
      observation.unordered
      ? Self.rows(expectedText).joined(separator: "; ") : Self.words(expectedText)
    let converge =
      observation.converge.map { resolver.display($0, values: values) }
      ?? "runbook run --refresh \(step)"
    var finding = DriftFinding(
      step: step, action: action, kind: "missing", field: observation.describes,
      expected: expected, actual: nil, resource: recorded, converge: converge)
    if let presence = observation.presence {
      guard let found = try await read(presence, observation, step: step, action: action, values)
      else { return finding }
      if Self.words(found).isEmpty || Self.words(found) == "None" { return finding }
    }
    guard
      let output = try await read(
        observation.command, observation, step: step, action: action, values)
    else { return finding }
    let text = observation.extract.map { Self.extracted($0, in: output) } ?? output
    let actual =
      observation.unordered ? Self.rows(text).joined(separator: "; ") : Self.words(text)
    if actual.isEmpty || actual == "None" {
      guard observation.presence != nil else { return finding }
      finding.kind = "changed"
      finding.actual = "none"
      return finding
    }
    guard actual != expected else { return nil }
    finding.kind = "changed"
    finding.actual = actual
    return finding
  }

  /// The output of a drift read; nil when it failed with an error meaning the resource is gone.
  private func read(
    _ command: Command, _ observation: Observation, step: String, action: String,
    _ values: [String: String]
  ) async throws -> String? {
    let output = try await runCommand(
      command, values: values, step: step, action: action, audit: nil)
    if output.succeeded { return output.stdoutText }
    guard let code = dialect.errorCode(in: output.stderrText),
      observation.missingErrors.contains(code)
    else {
      throw StepFailure(
        step: step, action: action,
        command: resolver.display(command, values: values),
        termination: output.termination, errorCode: dialect.errorCode(in: output.stderrText),
        errorCodeLabel: dialect.errorCodeLabel,
        reason: dialect.explain(resolver.secrets.mask(output.stderrText)))
    }
    return nil
  }

  /// Tagged resources of `steps` the checkpoint does not record.
  private func extras(
    _ inventory: DriftInventory, steps: [String], _ checkpoint: Checkpoint,
    _ values: [String: String]
  ) async throws -> [DriftFinding] {
    try checkInterrupted()
    let output = try await runCommand(
      inventory.command, values: values, step: steps.first ?? "-", action: "tagged-resources",
      audit: nil)
    guard output.succeeded else {
      throw StepFailure(
        step: steps.first ?? "-", action: "tagged-resources",
        command: resolver.display(inventory.command, values: values),
        termination: output.termination, errorCode: dialect.errorCode(in: output.stderrText),
        errorCodeLabel: dialect.errorCodeLabel,
        reason: dialect.explain(resolver.secrets.mask(output.stderrText)))
    }
    var recorded = Set(checkpoint.exports.values)
    for record in checkpoint.actions.values {
      if let value = record.value { recorded.insert(value) }
    }
    recorded.remove("")
    var findings: [DriftFinding] = []
    for line in output.stdoutText.split(whereSeparator: \.isNewline) {
      let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
      guard let id = words.first, id != "None" else { continue }
      let tag = words.count > 1 ? words[1] : "None"
      let parts = tag.split(separator: "/", maxSplits: 1).map(String.init)
      guard parts.count == 2, steps.contains(parts[0]) else { continue }
      // A done action that recorded no id (a log group) cannot tell its resource from another.
      let record = checkpoint.record(parts[0], parts[1])
      if record?.status == .done, record?.value == nil { continue }
      if inventory.isRecorded(id, recorded) { continue }
      findings.append(
        DriftFinding(
          step: parts[0], action: parts[1], kind: "extra", field: "resource",
          expected: "none: the checkpoint records no such resource", actual: id, resource: id,
          converge: inventory.deletion(id)))
    }
    return findings.sorted {
      ($0.step, $0.action, $0.resource ?? "") < ($1.step, $1.action, $1.resource ?? "")
    }
  }

  /// Text with every run of spaces, tabs and newlines as one space (how aws prints a row).
  static func words(_ text: String) -> String {
    text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
  }

  /// The non-empty lines of `text`, each as ``words(_:)``, sorted.
  static func rows(_ text: String) -> [String] {
    text.split(whereSeparator: \.isNewline).map { words(String($0)) }.filter { !$0.isEmpty }
      .sorted()
  }

  /// The groups of `expression`'s first match in `text` that took part in it, joined by spaces;
  /// the text as it is when it does not match.
  static func extracted(_ expression: String, in text: String) -> String {
    guard
      let regex = try? NSRegularExpression(
        pattern: expression, options: [.dotMatchesLineSeparators]),
      let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text))
    else { return text }
    return (1..<max(match.numberOfRanges, 1)).compactMap { index in
      Range(match.range(at: index), in: text).map { String(text[$0]) }
    }.joined(separator: " ")
  }
}
