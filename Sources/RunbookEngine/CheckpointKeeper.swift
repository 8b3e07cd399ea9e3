import Foundation
import RunbookProcess
import RunbookState
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Holds the checkpoint during a run and writes every change durably, one at a time.
actor CheckpointKeeper {
  private(set) var current: Checkpoint
  let directory: any StateStore

  /// Changes wait their turn: writing suspends the actor, and each change must start from the
  /// checkpoint the previous one wrote.
  private let turns = FIFOSemaphore(1)

  init(_ checkpoint: Checkpoint, directory: any StateStore) {
    current = checkpoint
    self.directory = directory
  }

  func record(_ key: String, _ record: ActionRecord) async throws {
    try await change { next in
      next.actions[key] = record
      if let export = record.export, let value = record.value, record.status == .done {
        next.exports[export] = value
      }
      if next.lastFailure.map({ "\($0.step)/\($0.action)" }) == key { next.lastFailure = nil }
    }
  }

  /// Sets one export (a procedure's value recorded before it goes on).
  func setExport(_ name: String, _ value: String, owner: String) async throws {
    try await change { next in
      next.exports[name] = value
      // An export an action captures belongs to that action's step; a new one to the procedure's.
      if !next.actions.values.contains(where: { $0.export == name }),
        next.exportOwners?[name] == nil
      {
        next.exportOwners = (next.exportOwners ?? [:]).merging([name: owner]) { $1 }
      }
    }
  }

  /// Pins the account of the credentials (the first run that asked AWS).
  func pin(account: String) async throws {
    try await change { next in next.account = account }
  }

  /// Forgets a step's records and exports (its teardown finished: what it made is gone).
  func forget(step: String) async throws {
    try await change { next in next.forget(step: step) }
  }

  /// Forgets the records of `keys` (`step/action`) in one write (`run --refresh`).
  func forget(actions keys: [String]) async throws {
    try await change { next in
      for key in keys { next.forget(action: key) }
    }
  }

  func fail(step: String, action: String, message: String) async throws {
    try await change { next in
      next.lastFailure = FailureRecord(
        step: step, action: action, message: message, at: timestamp())
    }
  }

  /// Applies `edit` to the current checkpoint in its turn, and saves the result as the next version.
  private func change(_ edit: (inout Checkpoint) -> Void) async throws {
    await turns.acquire()
    do {
      var next = current
      edit(&next)
      next = next.succeeding(current)
      try await directory.save(next)
      current = next
      await turns.release()
    } catch {
      await turns.release()
      throw error
    }
  }
}
