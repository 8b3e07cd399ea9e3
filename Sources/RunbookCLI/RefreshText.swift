import Foundation
import RunbookEngine

/// How `plan --refresh` and `run --refresh` show what the refresh runs again, and why.
enum RefreshText {
  /// The lines of a refresh plan: each action run again with its reason, what it refuses,
  /// dependents outside the run, and the `extra` resources (reported, never acted on).
  static func lines(_ plan: RefreshPlan, steps: [String], style: Style, preview: Bool) -> [String] {
    var lines: [String] = []
    let names = steps.joined(separator: " ")
    if plan.reruns.isEmpty, plan.refusals.isEmpty {
      lines.append(
        "refresh: nothing to run again: what \(names) made is as the checkpoint and today's configuration say"
      )
    }
    if !plan.reruns.isEmpty {
      lines.append(
        style.yellow("refresh: \(plan.reruns.count) done action(s) ")
          + (preview ? "will run again ('runbook run --refresh \(names)'):" : "ran again:"))
      for rerun in plan.reruns {
        lines.append(
          "  \(rerun.key)" + (rerun.recorded.map { " (\($0))" } ?? "") + ": \(rerun.reason)")
      }
    }
    if !plan.refusals.isEmpty {
      lines.append(
        style.red("refresh refused")
          + ": what these actions made cannot be changed in place, and replacing it is not done silently:"
      )
      for refusal in plan.refusals {
        lines.append("  \(refusal.step)/\(refusal.action): \(refusal.reason)")
      }
      var refused: [String] = []
      for refusal in plan.refusals where !refused.contains(refusal.step) {
        refused.append(refusal.step)
      }
      let list = refused.joined(separator: " ")
      lines.append(
        "  to replace it: 'runbook destroy \(list)', then 'runbook run \(list)'; or make the configuration say what AWS has"
      )
    }
    if !plan.outside.isEmpty {
      var others: [String] = []
      for item in plan.outside where !others.contains(item.step) { others.append(item.step) }
      lines.append(
        style.yellow("not in this run")
          + ": these done actions use what is made anew and keep the old id until 'runbook run --refresh \(others.joined(separator: " "))':"
      )
      for item in plan.outside { lines.append("  \(item.key): \(item.reason)") }
    }
    let extra = plan.findings.filter { $0.kind == "extra" }
    if !extra.isEmpty {
      lines.append(
        "not acted on: \(extra.count) resource(s) tagged with this deployment that the checkpoint does not know ('runbook drift'):"
      )
      for finding in extra {
        lines.append(
          "  \(finding.step)/\(finding.action)" + (finding.resource.map { " \($0)" } ?? ""))
      }
    }
    return lines
  }
}
