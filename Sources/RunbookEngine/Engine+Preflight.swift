import Foundation
import RunbookProcess
import RunbookState
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

extension Engine {
  // MARK: - Prerequisites

  /// The step that produces `export`, if any.
  func producer(of export: String) -> (any Step<Configuration>)? {
    catalogue.first { $0.producedExports(for: deployment).contains(export) }
  }

  /// Checks that every export the steps need exists or is produced by an earlier step of the run.
  package func checkPrerequisites(_ steps: [any Step<Configuration>], checkpoint: Checkpoint?)
    throws
  {
    var available = Set((checkpoint?.exports ?? [:]).keys)
    // A teardown uses the exports of what was created; what was never created it leaves alone.
    for step in steps where !(step is TeardownStep<Configuration>) {
      let missing = step.requiredExports(for: deployment).filter { !available.contains($0) }
      if !missing.isEmpty {
        let producers = missing.compactMap { producer(of: $0)?.id }
        var unique: [String] = []
        for id in producers where !unique.contains(id) { unique.append(id) }
        let advice =
          unique.isEmpty
          ? "no step produces them"
          : "run 'runbook run \(unique.joined(separator: " "))' first"
        throw UsageError(
          "step '\(step.id)' needs \(missing.joined(separator: ", ")), which the checkpoint does not have: \(advice)"
        )
      }
      available.formUnion(step.producedExports(for: deployment))
    }
  }

  /// Checks what each step needs from this run's request (`update` needs `--tag`).
  func checkRequests(_ steps: [any Step<Configuration>]) throws {
    let problems = steps.compactMap { $0.usageProblem(for: deployment) }
    if !problems.isEmpty { throw UsageError(problems.joined(separator: "; ")) }
  }

  /// Checks that every program the pending actions run (`aws`, `docker`, `zip`...) is on PATH
  /// (or where the resolver's `programs` say it is).
  package func checkTools(_ steps: [any Step<Configuration>], checkpoint: Checkpoint?) throws {
    let tools = neededTools(steps, checkpoint: checkpoint)
    let path = environment["PATH"] ?? ProcessInfo.processInfo.environment["PATH"]
    let missing = tools.filter { findExecutable(resolver.executable($0), path: path) == nil }
    if !missing.isEmpty {
      var location = "on PATH"
      for tool in missing {
        if let hint = preflight.toolHints[tool] { location += " (\(tool) \(hint))" }
      }
      throw UsageError(
        "cannot find \(missing.map { "'\(resolver.executable($0))'" }.joined(separator: " and ")) \(location), which the steps \(steps.map(\.id).joined(separator: ", ")) need (see 'runbook doctor')"
      )
    }
  }

  /// The programs the actions still to run start (always the one that reads the account first).
  func neededTools(_ steps: [any Step<Configuration>], checkpoint: Checkpoint?) -> [String] {
    var tools: [String] = [preflight.account.tool]
    for step in steps {
      for action in step.actions(for: deployment)
      where action.repeatable || checkpoint?.record(step.id, action.name)?.status != .done {
        if action.isManual { continue }
        let commands = action.procedure?.commands ?? [action.command]
        for command in commands + commands.flatMap(\.pipedInto) where !tools.contains(command.tool)
        {
          tools.append(command.tool)
        }
      }
    }
    return tools
  }

  /// When actions still to run use a program whose service must answer (``Preflight/services``),
  /// it is asked before anything is created.
  func checkServices(_ steps: [any Step<Configuration>], checkpoint: Checkpoint?) async throws {
    let tools = neededTools(steps, checkpoint: checkpoint)
    for check in preflight.services where tools.contains(check.tool) {
      let output = try await runner.run(
        Invocation(executable: check.tool, arguments: check.arguments))
      guard !output.succeeded else { continue }
      let reason = output.stderrText.split(separator: "\n").last.map(String.init) ?? "no answer"
      throw UsageError(check.failure(reason, steps.map(\.id)))
    }
  }

  /// The actions (`step/action`) of these steps a run may start: those not recorded as done,
  /// the repeatable ones and those it overwrites.
  func actionsToRun(_ steps: [any Step<Configuration>], checkpoint: Checkpoint?) -> Set<String> {
    var keys = Set<String>()
    for step in steps {
      for action in step.actions(for: deployment)
      where action.repeatable || overwrites(action)
        || checkpoint?.record(step.id, action.name)?.status != .done
      {
        keys.insert("\(step.id)/\(action.name)")
      }
    }
    return keys
  }

  /// Whether any action of these steps still has work to do.
  func hasWork(_ steps: [any Step<Configuration>], checkpoint: Checkpoint?) -> Bool {
    steps.contains { step in
      step.actions(for: deployment).contains { action in
        if overwrites(action) || action.repeatable { return true }
        guard let record = checkpoint?.record(step.id, action.name) else { return true }
        switch record.status {
        case .done: return false
        case .pendingManual: return prompter != nil
        case .skipped: return true
        }
      }
    }
  }
}
