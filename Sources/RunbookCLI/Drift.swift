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
    let findings = try await engine.drift(
      steps, inventory: context.deployment.driftInventory)
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
        let what: String
        switch finding.kind {
        case "missing":
          what =
            style.red("missing")
            + " (today's configuration expects \(finding.field) \(finding.expected))"
        case "extra":
          what =
            style.yellow("extra")
            + " (tagged with this deployment and lineage; the checkpoint does not record it)"
        default:
          what =
            style.yellow("changed: ")
            + "\(finding.field) is \(finding.actual ?? "?"), today's configuration says \(finding.expected)"
        }
        let converge = finding.converge.map { "  converge: \($0)" } ?? ""
        environment.output.write("\(resource)  \(what)\(converge)\n")
      }
      let names = steps.map(\.id).joined(separator: " ")
      environment.output.write(
        findings.isEmpty
          ? "no drift: what \(names) made is as today's configuration says\n"
          : "\(findings.count) finding(s). Each line ends with what converges it: 'runbook run --refresh STEP' (preview it with 'runbook plan --refresh STEP') makes a missing or changed resource again; or set it back in AWS, or make the configuration say what AWS has; one that cannot be changed in place (exit 5 from 'run --refresh'): make the step anew ('runbook destroy STEP', then 'runbook run STEP'). An extra resource is never touched by the tool: delete it yourself if it is not wanted\n"
      )
    }
    return findings.isEmpty ? ExitStatus.success : ExitStatus.drifted
  }
}
