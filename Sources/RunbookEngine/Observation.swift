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

/// A resource a done action made that AWS no longer holds as today's configuration would make it.
package struct DriftFinding: Codable, Sendable, Hashable {
  package var step: String
  package var action: String
  /// `missing` or `changed`.
  package var kind: String
  /// What is compared (`cidr and zone`).
  package var field: String
  package var expected: String
  /// What AWS has (absent when missing).
  package var actual: String?
  /// The resource's id, as the checkpoint records it.
  package var resource: String?
}

extension Engine {
  /// Reads every resource of `steps` that the checkpoint records as done and that its action
  /// knows how to read back (``Observation``), and compares it with today's configuration. Reads
  /// only: no lock, no write.
  package func drift(_ steps: [any Step<Configuration>]) async throws -> [DriftFinding] {
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
        try checkInterrupted()
        let output = try await runCommand(
          observation.command, values: values, step: step.id, action: action.name, audit: nil)
        let expected = Self.words(resolver.display(observation.expected, values: values))
        var finding = DriftFinding(
          step: step.id, action: action.name, kind: "missing", field: observation.describes,
          expected: expected, actual: nil, resource: record.value)
        if !output.succeeded {
          guard let code = dialect.errorCode(in: output.stderrText),
            observation.missingErrors.contains(code)
          else {
            throw StepFailure(
              step: step.id, action: action.name,
              command: resolver.display(observation.command, values: values),
              termination: output.termination, errorCode: dialect.errorCode(in: output.stderrText),
              errorCodeLabel: dialect.errorCodeLabel,
              reason: dialect.explain(resolver.secrets.mask(output.stderrText)))
          }
          findings.append(finding)
          if let export = action.capture?.export { gone.insert(export) }
          continue
        }
        let actual = Self.words(output.stdoutText)
        if actual.isEmpty || actual == "None" {
          findings.append(finding)
          if let export = action.capture?.export { gone.insert(export) }
        } else if actual != expected {
          finding.kind = "changed"
          finding.actual = actual
          findings.append(finding)
        }
      }
    }
    return findings
  }

  /// Text with every run of spaces, tabs and newlines as one space (how aws prints a row).
  static func words(_ text: String) -> String {
    text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
  }
}
