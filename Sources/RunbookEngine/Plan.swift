import Foundation
import RunbookProcess
import RunbookState
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// One action as `plan` shows it.
package struct PlannedAction: Sendable, Hashable {
  package var name: String
  package var summary: String
  /// `read`, `write`, `wait` or `manual`.
  package var kind: String
  package var command: String
  package var done: Bool
  package var export: String?
  /// For a teardown action whose resource stays: why (adopted, existed already, never made).
  package var kept: String?
  /// For a done action: how today's configuration would make its command otherwise.
  package var drift: ConfigurationDrift?
}

/// One step as `plan` shows it.
package struct PlannedStep: Sendable, Hashable {
  package var id: String
  package var section: String
  package var title: String
  package var actions: [PlannedAction]
}

extension Engine {

  /// Every command the steps would run, in order, with placeholders for unknown values. Starts no process.
  package func plan(_ steps: [any Step<Configuration>]) async throws -> [PlannedStep] {
    try plan(steps, checkpoint: try await loadCheckpoint())
  }

  /// ``plan(_:)`` for a checkpoint read already.
  package func plan(_ steps: [any Step<Configuration>], checkpoint: Checkpoint?) throws
    -> [PlannedStep]
  {
    let values = contextValues(checkpoint)
    try checkRequests(steps)
    let drift = configurationDrift(steps, checkpoint: checkpoint)
    return steps.map { step in
      PlannedStep(
        id: step.id, section: step.section, title: step.title,
        actions: step.actions(for: deployment).map { action in
          let kind: String
          switch action.effect {
          case .read: kind = action.wait == nil ? "read" : "wait"
          case .write: kind = "write"
          case .manual: kind = "manual"
          }
          var command: String
          if case .manual(let instructions) = action.effect {
            command = resolver.display(instructions, values: values)
          } else if let procedure = action.procedure {
            command = resolver.display(procedure.outline, values: values)
          } else {
            command = resolver.display(action.command, values: values)
          }
          if let settlement = action.settledBy, settlement.consequence == .nothingToDo {
            command +=
              "\n  not needed when \(settlement.action) creates its resource in the same run"
          }
          if let overwrite = action.overwrite {
            command +=
              "\n  with --overwrite-secrets, when it exists already:\n"
              + resolver.display(overwrite, values: values)
          }
          let record = checkpoint?.record(step.id, action.name)
          return PlannedAction(
            name: action.name, summary: action.summary, kind: kind, command: command,
            done: record?.status == .done && !action.repeatable, export: action.capture?.export,
            kept: action.deletes.flatMap {
              StepExecution.notOwned(checkpoint?.record(step.id, $0))
            }
              ?? action.configures.flatMap {
                StepExecution.notConfigurable(checkpoint?.record(step.id, $0))
              },
            drift: drift.first { $0.step == step.id && $0.action == action.name })
        })
    }
  }
}
