import Foundation
import RunbookAWS
import RunbookProcess
import Synchronization

/// The run history in S3: one object, `history.jsonl` under the prefix, the same lines as a local
/// `history.jsonl`, so `history` costs one `get-object` whoever ran what.
///
/// S3 has no append: a record is added by writing the object back with `--if-match` the ETag of
/// the version read (`--if-none-match '*'` when there is none). Runs write it under the lock, so
/// the version a run wrote at its start is still the latest at its end and the end record needs
/// no second read; when it is not (someone unlocked and ran meanwhile), S3 answers
/// `PreconditionFailed`, and the record is added to the version read again.
package struct S3History: HistoryStore {
  let store: S3StateStore
  static let key = "history.jsonl"

  /// The version of the object this process read or wrote last.
  final class Cache: Sendable {
    let latest = Mutex<(data: Data, eTag: String)?>(nil)
  }

  package func append(_ record: RunRecord) async throws {
    try await append(lines: try record.line())
  }

  /// Adds `records` in one write (`state push`).
  package func append(contentsOf records: [RunRecord]) async throws {
    guard !records.isEmpty else { return }
    try await append(lines: try records.reduce(into: Data()) { $0 += try $1.line() })
  }

  private func append(lines line: Data) async throws {
    for _ in 0..<5 {
      let known: (data: Data, eTag: String)?
      if let cached = store.historyCache.latest.withLock({ $0 }) {
        known = cached
      } else {
        known = try await store.read(Self.key)
      }
      let condition = known.map { ["--if-match", $0.eTag] } ?? ["--if-none-match", "*"]
      let data = (known?.data ?? Data()) + line
      if let eTag = try await store.write(Self.key, data, condition: condition) {
        store.historyCache.latest.withLock { $0 = (data, eTag) }
        return
      }
      store.historyCache.latest.withLock { $0 = nil }
    }
    throw StateConflictError(
      object: "\(store.location)/\(Self.key)",
      detail: "PreconditionFailed five times in a row: other runs keep writing it")
  }

  package func records() async throws -> [RunRecord] {
    guard let (data, _) = try await store.read(Self.key) else { return [] }
    return RunRecord.parse(data)
  }
}
