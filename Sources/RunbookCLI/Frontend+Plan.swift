import Foundation
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook

extension Frontend {
  /// `plan` (and `run --dry-run`): every command the steps would run, then the monthly cost.
  /// With `refresh` (`plan --refresh`) it reads what the checkpoint records first (writes
  /// nothing) and shows the done actions `run --refresh` would run again; the exit status says
  /// whether the refresh would refuse (``ExitStatus/refreshRefused``).
  func printPlan(
    _ context: Context, steps: [any GuideStep], style: Style, imageTag: String? = nil,
    request: RunRequest = RunRequest(), refresh: Bool = false
  ) async throws -> Int32 {
    let engine = context.engine(
      runner: runner, reporter: SilentReporter(), prompter: nil,
      options: RunOptions(), imageTag: imageTag, request: request)
    let refreshPlan = refresh ? try await engine.refreshPlan(steps) : nil
    let planned: [PlannedStep]
    if let refreshPlan {
      planned = try await engine.plan(steps, refresh: refreshPlan)
    } else {
      planned = try await engine.plan(steps)
    }
    let again = refreshPlan?.keys ?? []
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
        if again.contains("\(step.id)/\(action.name)") { header += style.yellow(" (runs again)") }
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
    if let refreshPlan {
      for line in RefreshText.lines(
        refreshPlan, steps: steps.map(\.id), style: style, preview: true)
      {
        environment.output.write(line + "\n")
      }
    }
    if let prices = CostEstimate.load(for: context.deployment) {
      environment.output.write(
        CostEstimate(
          prices: prices, deployment: context.deployment, steps: planned.map(\.id),
          support: EngineSupportCalendar.load(for: context.deployment)
        ).render())
    }
    return refreshPlan?.refusals.isEmpty == false ? ExitStatus.refreshRefused : ExitStatus.success
  }
}
