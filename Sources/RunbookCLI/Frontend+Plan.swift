import Foundation
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook

extension Frontend {
  /// `plan` (and `run --dry-run`): every command the steps would run, then the monthly cost.
  func printPlan(
    _ context: Context, steps: [any GuideStep], style: Style, imageTag: String? = nil,
    request: RunRequest = RunRequest()
  ) async throws {
    let engine = context.engine(
      runner: runner, reporter: SilentReporter(), prompter: nil,
      options: RunOptions(), imageTag: imageTag, request: request)
    let planned = try await engine.plan(steps)
    var writes = 0
    var total = 0
    for step in planned {
      environment.output.write(style.bold("\(step.section) \(step.title) (\(step.id))") + "\n")
      for action in step.actions {
        total += 1
        if action.kind == "write" && !action.done { writes += 1 }
        let marker = action.kind == "write" ? "!" : (action.kind == "manual" ? "?" : "$")
        var header = "  \(marker) \(action.name): \(action.summary)"
        if let export = action.export { header += " -> \(export)" }
        if action.done {
          header +=
            action.drift == nil
            ? style.dim(" (done)") : style.yellow(" (done with another configuration)")
        }
        environment.output.write(header + "\n")
        for line in action.command.split(separator: "\n", omittingEmptySubsequences: false) {
          environment.output.write("      \(line)\n")
        }
        if let drift = action.drift {
          let (recorded, today) = drift.difference
          environment.output.write("      recorded: \(recorded)\n      today:    \(today)\n")
        }
      }
    }
    environment.output.write(
      "\(total) actions, \(writes) writes still to do ('!' writes, '$' reads, '?' manual); nothing was run\n"
    )
    let drift = planned.flatMap(\.actions).compactMap(\.drift)
    if !drift.isEmpty {
      environment.output.write(
        style.yellow("\(drift.count) done action(s) were done with another configuration")
          + " than today's (marked above); "
          + ConfigurationDriftText.advice(drift) + "\n")
    }
    if let prices = CostEstimate.load(for: context.deployment) {
      environment.output.write(
        CostEstimate(
          prices: prices, deployment: context.deployment, steps: planned.map(\.id),
          support: EngineSupportCalendar.load(for: context.deployment)
        ).render())
    }
  }
}
