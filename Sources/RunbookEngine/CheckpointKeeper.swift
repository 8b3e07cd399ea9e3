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

  /// Whether a change is being written; changes wait their turn (writing suspends the actor,
  /// and each change must start from the checkpoint the previous one wrote).
  private var writing = false
  private var waiting: [CheckedContinuation<Void, Never>] = []

  init(_ checkpoint: Checkpoint, directory: any StateStore) {
    current = checkpoint
    self.directory = directory
  }

  private func takeTurn() async {
    if writing {
      await withCheckedContinuation { waiting.append($0) }
    } else {
      writing = true
    }
  }

  private func endTurn() {
    if waiting.isEmpty { writing = false } else { waiting.removeFirst().resume() }
  }

  func record(_ key: String, _ record: ActionRecord) async throws {
    await takeTurn()
    defer { endTurn() }
    var next = current
    next.actions[key] = record
    if let export = record.export, let value = record.value, record.status == .done {
      next.exports[export] = value
    }
    if next.lastFailure.map({ "\($0.step)/\($0.action)" }) == key { next.lastFailure = nil }
    try await save(next)
  }

  /// Sets one export (a procedure's value recorded before it goes on).
  func setExport(_ name: String, _ value: String, owner: String) async throws {
    await takeTurn()
    defer { endTurn() }
    var next = current
    next.exports[name] = value
    // An export an action captures belongs to that action's step; a new one to the procedure's.
    if !next.actions.values.contains(where: { $0.export == name }), next.exportOwners?[name] == nil
    {
      next.exportOwners = (next.exportOwners ?? [:]).merging([name: owner]) { $1 }
    }
    try await save(next)
  }

  /// Forgets a step's records and exports (its teardown finished: what it made is gone).
  func forget(step: String) async throws {
    await takeTurn()
    defer { endTurn() }
    var next = current
    next.forget(step: step)
    try await save(next)
  }

  func fail(step: String, action: String, message: String) async throws {
    await takeTurn()
    defer { endTurn() }
    var next = current
    next.lastFailure = FailureRecord(step: step, action: action, message: message, at: timestamp())
    try await save(next)
  }

  private func save(_ next: Checkpoint) async throws {
    var next = next
    next.serial = current.serial + 1
    next.updatedAt = timestamp()
    try await directory.save(next)
    current = next
  }
}
