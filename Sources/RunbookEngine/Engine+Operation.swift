import Foundation
import RunbookProcess
import RunbookState

extension Engine {
  /// Runs one write that keeps nothing in the checkpoint (`runbook task run`): checked like a
  /// run (the lock free, the checkpoint this deployment's, the exports it needs there, the
  /// account its own), asked for in interactive mode, then run under the lock, in the audit log
  /// and the history. The checkpoint is read, never written: `body`'s context cannot record.
  ///
  /// - Parameters:
  ///   - name: what the audit log and the history call it (`task`), the step's place.
  ///   - requires: the exports `body` reads; missing ones are a usage error (nothing runs).
  ///   - failure: what the history says went wrong with a result `body` returned (nil: success).
  /// - Throws: ``UsageError``, ``LockHeldError``, ``CheckpointError``, ``StepFailure`` (a
  ///   ``ProcedureFailure`` of `body`), ``Interrupted`` (also `n` or `q` at the prompt).
  package func runOperation<T: Sendable>(
    name: String, action: String, summary: String, outline: [Procedure.Line],
    requires: [String], failure: @Sendable (T) -> String? = { _ in nil },
    body: @Sendable (ProcedureContext) async throws -> T
  ) async throws -> T {
    try state.checkWritable()
    if let holder = try await state.lockHolder() {
      throw LockHeldError(path: state.lockFile, holder: holder)
    }
    let checkpoint = try await loadCheckpoint()
    let missing = requires.filter { checkpoint?.exports[$0] == nil }
    guard let checkpoint, missing.isEmpty else {
      throw UsageError(
        "'\(name) \(action)' needs \(missing.joined(separator: ", ")) from the checkpoint in \(state.location): deploy first ('runbook run')"
      )
    }
    let account = try await callerAccount()
    if let pinned = checkpoint.account, pinned != account {
      throw CheckpointError.foreignAccount(
        file: state.stateFile, checkpoint: pinned, credentials: account)
    }
    let values = contextValues(checkpoint)
    if let prompter {
      let shown = resolver.display(outline, values: values)
      switch prompter.approve(step: name, action: action, summary: summary, command: shown) {
      case .yes, .all: break
      case .skip: throw Interrupted("not confirmed at the prompt: nothing was run")
      case .quit:
        try checkInterrupted()
        throw Interrupted("quit at the prompt")
      }
    }
    try await state.prepare()
    let lock = try await state.acquireLock(command: options.commandLine)
    let audit = AuditLog(directory: state.logsDirectory)
    audit.write("run: \(options.commandLine)")
    audit.write("account \(account), region \(region)")
    let started = RunRecord(
      lineage: checkpoint.lineage, command: resolver.secrets.mask(options.commandLine),
      steps: [name], log: audit.path, imageTag: nil)
    await appendHistory(started)
    let context = ProcedureContext(
      engine: self, step: name, action: action, keeper: nil, audit: audit, values: values)
    do {
      let result = try await body(context)
      let failed = failure(result)
      audit.write("[\(name)/\(action)] " + (failed ?? "finished"))
      await appendHistory(
        started.finished(
          outcome: failed == nil ? .succeeded : .failed, changes: [], failure: failed))
      await lock.release()
      return result
    } catch {
      var thrown = error
      if let failure = error as? ProcedureFailure {
        // A command Ctrl-C stopped fails too: the interruption is the real story.
        do {
          try checkInterrupted()
          thrown = StepFailure(
            step: name, action: action, command: failure.command ?? summary, termination: nil,
            errorCode: nil, reason: failure.reason)
        } catch { thrown = error }
      }
      audit.write("[\(name)/\(action)] failed: \(thrown)")
      await appendHistory(
        started.finished(
          outcome: Self.historyOutcome(of: thrown), changes: [],
          failure: "\(thrown)".split(separator: "\n").first.map(String.init)))
      await lock.release()
      throw thrown
    }
  }
}
