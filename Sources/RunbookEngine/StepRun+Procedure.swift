import Foundation
import RunbookProcess
import RunbookState
import Synchronization

// MARK: - Procedures

extension StepRun {
  /// Runs a procedure action: asked and journaled like any write when it writes, recorded like
  /// any action when it ends.
  func run(_ procedure: Procedure, of action: Action, key: String, values: [String: String])
    async throws -> ActionOutcome
  {
    let checkpoint = await keeper.current
    let shown = engine.resolver.display(procedure.outline, values: values)
    if action.isWrite {
      guard try approved(action, summary: action.summary, shown: shown) else { return .skipped }
      try await journal.append(
        JournalEntry(
          lineage: checkpoint.lineage, event: .intent, action: key, command: procedure.name))
    }
    let context = ProcedureContext(
      engine: engine, step: step.id, action: action.name, keeper: keeper, audit: audit,
      values: values)
    let value: String?
    do {
      value = try await procedure.body(context)
    } catch let error as ProcedureFailure {
      // A command Ctrl-C stopped fails too: the interruption is the real story.
      try engine.checkInterrupted()
      if action.isWrite {
        try await journal.append(
          JournalEntry(lineage: checkpoint.lineage, event: .failed, action: key))
      }
      try await keeper.fail(step: step.id, action: action.name, message: error.reason)
      reporter.report(.actionFailed(step: step.id, action: action.name, message: error.reason))
      throw StepFailure(
        step: step.id, action: action.name, command: error.command ?? procedure.name,
        termination: nil,
        errorCode: nil, reason: error.reason)
    }
    if let capture = action.capture, let value, !capture.accepts(value) {
      let reason =
        "the procedure returned '\(value.prefix(200))', not a valid \(capture.export ?? "value") (expected \(capture.pattern))"
      try await keeper.fail(step: step.id, action: action.name, message: reason)
      throw StepFailure(
        step: step.id, action: action.name, command: procedure.name, termination: nil,
        errorCode: nil,
        reason: reason)
    }
    let outcome: ActionOutcome =
      action.deletes != nil ? .deleted : action.isWrite ? .updated : .read
    if action.isWrite {
      try await journal.append(
        JournalEntry(
          lineage: checkpoint.lineage, event: .result, action: key, value: value,
          outcome: outcome == .deleted ? .deleted : .updated))
    }
    return try await finish(action, key: key, outcome: outcome, value: value)
  }
}
