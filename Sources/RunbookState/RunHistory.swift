import Foundation
import RunbookAWS
import RunbookProcess

#if canImport(Glibc)
  import Glibc
#endif

/// One record of the run history (`history.jsonl` beside the journal, or its S3 object): a run
/// writes `started` once it holds the lock, before its first change, and `finished` when it ends.
/// A run killed in between leaves its `started` alone, and `history` shows it `interrupted`,
/// with what its journal says it did.
package struct RunRecord: Codable, Sendable, Hashable {
  package enum Event: String, Codable, Sendable {
    case started, finished
  }

  /// How a run ended; each has its exit status (``exitStatus(of:)``).
  package enum Outcome: String, Codable, Sendable {
    /// Every action it ran finished.
    case succeeded
    /// A step failed (exit 1).
    case failed
    /// Ctrl-C, SIGTERM, SIGHUP or `q` at a prompt (exit 130); also a run killed without an end.
    case interrupted
    /// The S3 state changed under the run, or the lock was lost (exit 3).
    case conflict
    /// Anything else that stopped it: a checkpoint or usage problem met on the way (exit 2).
    case error
  }

  /// What a run changed: one action's record that it made or changed.
  package struct Change: Codable, Sendable, Hashable {
    /// `step/action`, or the step alone when a teardown forgot it.
    package var action: String
    /// `created`, `recovered`, `adopted`, `updated`, `deleted`, `already-done`, `confirmed`.
    package var outcome: String
    /// The id it captured (ids and ARNs only: secrets are never recorded).
    package var value: String?

    package init(action: String, outcome: String, value: String? = nil) {
      self.action = action
      self.outcome = outcome
      self.value = value
    }
  }

  /// The chain of actions that set a run's wall time (`finished` only, when an action ran): what
  /// `run` prints as `critical path: …`, kept for `status --json`.
  package struct CriticalPath: Codable, Sendable, Hashable {
    package struct Link: Codable, Sendable, Hashable {
      /// `step/action`.
      package var action: String
      package var seconds: Double
      package init(action: String, seconds: Double) {
        self.action = action
        self.seconds = seconds
      }
    }
    package var links: [Link]
    /// From the first link's start to the last one's end.
    package var seconds: Double
    /// The line `run` printed (`network/vpc 1.2s -> network/subnet-public-2a 0.9s`).
    package var description: String
    package init(links: [Link], seconds: Double, description: String) {
      self.links = links
      self.seconds = seconds
      self.description = description
    }
  }

  package var event: Event
  /// A random id shared by a run's two records.
  package var run: String
  package var lineage: String
  /// When the run started (in both records).
  package var startedAt: String
  /// When the run ended (`finished` only).
  package var endedAt: String?
  package var user: String
  package var host: String
  package var pid: Int32
  /// The command line, secrets masked.
  package var command: String
  /// The steps it was asked to run, in order.
  package var steps: [String]
  /// The local audit log of the run (on the machine that ran it).
  package var log: String?
  package var outcome: Outcome?
  package var exitStatus: Int32?
  package var changes: [Change]?
  /// The image tag the run rolled out (`run update --tag`).
  package var imageTag: String?
  /// The first line of what stopped it.
  package var failure: String?
  package var criticalPath: CriticalPath?

  package init(
    run: String = UUID().uuidString.lowercased(), lineage: String, command: String,
    steps: [String], log: String?, imageTag: String?
  ) {
    event = .started
    self.run = run
    self.lineage = lineage
    startedAt = timestamp()
    user = ProcessInfo.processInfo.environment["USER"] ?? ProcessInfo.processInfo.userName
    host = ProcessInfo.processInfo.hostName
    pid = getpid()
    self.command = command
    self.steps = steps
    self.log = log
    self.imageTag = imageTag
  }

  /// This run's `finished` record.
  package func finished(outcome: Outcome, changes: [Change], failure: String?) -> RunRecord {
    var record = self
    record.event = .finished
    record.endedAt = timestamp()
    record.outcome = outcome
    record.exitStatus = Self.exitStatus(of: outcome)
    record.changes = changes
    record.failure = failure
    return record
  }

  /// The exit status `runbook` gives each outcome (its `--help` lists them).
  package static func exitStatus(of outcome: Outcome) -> Int32 {
    switch outcome {
    case .succeeded: 0
    case .failed: 1
    case .error: 2
    case .conflict: 3
    case .interrupted: 130
    }
  }

  /// One JSON line.
  package func line() throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return try encoder.encode(self) + Data("\n".utf8)
  }

  /// The records in JSON lines; a line that is not a record (a torn append) is left out: the
  /// history only tells, nothing is decided from it.
  package static func parse(_ data: Data) -> [RunRecord] {
    let decoder = JSONDecoder()
    return data.split(separator: UInt8(ascii: "\n")).compactMap {
      try? decoder.decode(RunRecord.self, from: Data($0))
    }
  }
}

/// Where a deployment's run history is kept, beside its journal.
package protocol HistoryStore: Sendable {
  /// Adds one record durably before returning.
  func append(_ record: RunRecord) async throws
  /// Every record, oldest first. Never writes.
  func records() async throws -> [RunRecord]
  /// Adds several records (`state push` and `pull`), durably before returning.
  func append(contentsOf records: [RunRecord]) async throws
}

extension HistoryStore {
  package func append(contentsOf records: [RunRecord]) async throws {
    for record in records { try await append(record) }
  }

  /// Adds the records of `source` this history lacks (by run and event), oldest first; returns
  /// how many. `state push` and `pull` copy the history with the checkpoint, so `history` shows
  /// the same runs on both sides.
  package func merge(from source: any HistoryStore) async throws -> Int {
    let known = Set(try await records().map { "\($0.run) \($0.event.rawValue)" })
    let missing = try await source.records().filter {
      !known.contains("\($0.run) \($0.event.rawValue)")
    }
    try await append(contentsOf: missing)
    return missing.count
  }
}

/// The history in a local state directory: `history.jsonl`, appended under `flock` and fsynced.
package struct HistoryFile: HistoryStore {
  package let path: String

  package init(path: String) { self.path = path }

  package func append(_ record: RunRecord) throws {
    let line = try record.line()
    try appendLocked(to: path) { fd in
      // A run killed during an append left a line without its newline: end it, so this record
      // stays a line of its own (the torn one is skipped when read).
      var info = stat()
      var last: UInt8 = 0
      if fstat(fd, &info) == 0, info.st_size > 0, pread(fd, &last, 1, info.st_size - 1) == 1,
        last != UInt8(ascii: "\n")
      {
        return Data("\n".utf8) + line
      }
      return line
    }
  }

  package func records() throws -> [RunRecord] {
    guard let data = try readIfPresent(path) else { return [] }
    return RunRecord.parse(data)
  }
}
