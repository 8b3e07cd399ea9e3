import Foundation
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook

extension Frontend {
  /// `runbook drift [STEP...] [--json]`: reads back what the checkpoint records and compares it
  /// with today's configuration; exit 4 when anything drifted, so CI can gate on it.
  func drift(_ context: Context, parsed: ParsedCommandLine, style: Style) async throws -> Int32 {
    let steps = try selectSteps(parsed.arguments)
    let engine = context.engine(
      runner: runner, reporter: SilentReporter(), prompter: nil, options: RunOptions())
    let findings = try await engine.drift(steps)
    if parsed.flag("json") {
      struct Document: Encodable {
        var schemaVersion = 1
        var deployment: String
        var steps: [String]
        var findings: [DriftFinding]
      }
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
      let document = Document(
        deployment: context.deployment.name, steps: steps.map(\.id), findings: findings)
      environment.output.write(
        String(decoding: try encoder.encode(document), as: UTF8.self) + "\n")
    } else {
      for finding in findings {
        let resource =
          "\(finding.step)/\(finding.action)" + (finding.resource.map { " \($0)" } ?? "")
        let what =
          finding.kind == "missing"
          ? style.red("missing")
            + " (today's configuration expects \(finding.field) \(finding.expected))"
          : style.yellow("changed: ")
            + "\(finding.field) is \(finding.actual ?? "?"), today's configuration says \(finding.expected)"
        environment.output.write("\(resource)  \(what)\n")
      }
      let names = steps.map(\.id).joined(separator: " ")
      environment.output.write(
        findings.isEmpty
          ? "no drift: what \(names) made is as today's configuration says\n"
          : "\(findings.count) finding(s). To converge: 'runbook plan --refresh \(names)' shows what 'runbook run --refresh \(names)' runs again (a resource deleted by hand is made anew, a changed setting applied again); a resource changed where it cannot be changed in place: set it back in AWS, make the configuration say what AWS has, or make the step anew ('runbook destroy STEP', then 'runbook run STEP')\n"
      )
    }
    return findings.isEmpty ? ExitStatus.success : ExitStatus.drifted
  }
}
