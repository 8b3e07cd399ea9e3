import Foundation
import RunbookAWS
import RunbookProcess

/// Where one deployment's checkpoint, journal and lock live: a local folder (``StateDirectory``)
/// or an S3 prefix (``S3StateStore``). The engine sees only this.
package protocol StateStore: Sendable {
  /// The folder or `s3://BUCKET/PREFIX`, as shown to people.
  var location: String { get }
  /// The checkpoint's name in messages (`<folder>/state.json`, `s3://BUCKET/PREFIX/state.json`).
  var stateFile: String { get }
  /// The lock's name in messages.
  var lockFile: String { get }
  /// The local folder that keeps this deployment's audit logs.
  var logsDirectory: String { get }
  /// The local folder where runs keep the files of their commands (a secret that cannot go on
  /// standard input, a document), each run in a ``PrivateFolder`` of its own.
  var scratchDirectory: String { get }

  /// Reads the checkpoint; nil when there is none yet. Never writes.
  func load() async throws -> Checkpoint?
  /// Checks, without writing and without a request, that the local folder (the state directory;
  /// with the state in S3, the folder of the audit logs) can be made and written.
  func checkWritable() throws
  /// Makes sure the checkpoint can be written (creates the folder; checks the bucket).
  func prepare() async throws
  /// Writes the checkpoint. An S3 store writes only over the version it read last, else throws
  /// ``StateConflictError``.
  func save(_ checkpoint: Checkpoint) async throws
  /// Takes the lock, or throws ``LockHeldError`` at once.
  func acquireLock(command: String) async throws -> any HeldLock
  /// Who holds the lock now, if anyone.
  func lockHolder() async throws -> LockRecord?
  /// The write-ahead journal.
  var journal: any JournalStore { get }
  /// The record of every run (``RunRecord``), kept with the state so a team sees each other's runs.
  var history: any HistoryStore { get }
}

/// A held lock.
package protocol HeldLock: Sendable {
  /// The record of a run that died holding the lock, if this lock took it over.
  var previous: LockRecord? { get }
  /// Gives the lock back (a released lock stays released).
  func release() async
}

/// The write-ahead journal of a state store.
package protocol JournalStore: Sendable {
  /// Adds one entry durably before returning.
  func append(_ entry: JournalEntry) async throws
  /// The last entry that counts for `action` in `lineage` (entries before a reset of its step do not).
  func latest(lineage: String, action: String) async throws -> JournalEntry?
  /// Reads what a run of `actions` (`step/action`) will need of the journal, and throws
  /// ``CheckpointError/corruptJournal(file:line:reason:)`` when an entry cannot be read; never
  /// writes. A run calls it before its first request, so a damaged journal stops it before
  /// anything is created. `lineage` is nil when there is no checkpoint yet.
  func verify(lineage: String?, actions: Set<String>) async throws
  /// The results of `lineage` journaled from `start` until `end` (nil: until now), in order: what
  /// a run killed without a history record of its end did. Never writes.
  func results(lineage: String, from start: Date, until end: Date?) async throws -> [JournalEntry]
}

/// Someone else changed the state between this run's read and its write; nothing was overwritten.
package struct StateConflictError: Error, Sendable, Hashable, CustomStringConvertible {
  package var object: String
  package var detail: String

  package init(object: String, detail: String) {
    self.object = object
    self.detail = detail
  }

  package var description: String { "\(object): \(detail)" }
}

extension StateDirectory: StateStore {
  package var location: String { path }
  package var scratchDirectory: String { path + "/scratch" }
  package func acquireLock(command: String) throws -> any HeldLock { try lock(command: command) }
  package var journal: any JournalStore { Journal(path: journalFile) }
  package var history: any HistoryStore { HistoryFile(path: historyFile) }
}

extension StateLock: HeldLock {}

extension Journal: JournalStore {
  package func latest(lineage: String, action: String) throws -> JournalEntry? {
    try latest(lineage: lineage)[action]
  }

  /// Reads every line, of every lineage (a line that cannot be read has no lineage to go by).
  package func verify(lineage: String?, actions: Set<String>) throws { _ = try entries() }

  package func results(lineage: String, from start: Date, until end: Date?) throws
    -> [JournalEntry]
  {
    try entries(lineage: lineage).filter { entry in
      guard entry.event == .result, let at = parseTimestamp(entry.at) else { return false }
      return at >= start && end.map { at < $0 } ?? true
    }
  }
}
