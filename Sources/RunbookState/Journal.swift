import Foundation
import RunbookAWS
import RunbookProcess

#if canImport(Glibc)
  import Glibc
#endif

/// One line of the write-ahead journal (`journal.jsonl`).
package struct JournalEntry: Codable, Sendable, Hashable {
  package enum Event: String, Codable, Sendable {
    /// About to run a write; appended and fsynced before the command starts.
    case intent
    /// The write finished and this is what it produced.
    case result
    /// The write failed (AWS said no); nothing to reconcile.
    case failed
    /// `reset STEP`: every earlier entry of the step no longer counts; a reset of `step/action`
    /// (`run --refresh`): every earlier entry of that action.
    case reset
  }

  package var at: String
  package var lineage: String
  package var event: Event
  /// `step/action`, or the step alone for `reset`.
  package var action: String
  /// The command, secrets masked (intents only).
  package var command: String?
  package var value: String?
  package var outcome: ActionRecord.Outcome?
  /// Why an action's reset was made (`missing: AWS no longer has it ...`).
  package var reason: String?

  package init(
    lineage: String, event: Event, action: String, command: String? = nil, value: String? = nil,
    outcome: ActionRecord.Outcome? = nil, reason: String? = nil
  ) {
    at = timestamp()
    self.reason = reason
    self.lineage = lineage
    self.event = event
    self.action = action
    self.command = command
    self.value = value
    self.outcome = outcome
  }
}

/// The append-only journal of write intents and results.
package struct Journal: Sendable {
  package let path: String

  package init(path: String) { self.path = path }

  /// Appends one entry and fsyncs it before returning.
  ///
  /// A run killed in the middle of an append leaves a last line without its newline. That torn
  /// line is cut off first when it is not a whole entry (its append never returned, so nothing
  /// acted on it), and ended with a newline when it is: a torn line never ends up in the middle of
  /// the journal, where a line that cannot be read stops the run (``entries(lineage:)``).
  /// Appends are serialised with `flock`, so two actions appending at once cannot cut each other.
  package func append(_ entry: JournalEntry) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let line = try encoder.encode(entry) + Data("\n".utf8)
    try appendLocked(to: path) { fd in
      var prefix = Data()
      if let tail = tornTail(fd) {
        if (try? JSONDecoder().decode(JournalEntry.self, from: tail.bytes)) != nil {
          prefix = Data("\n".utf8)
        } else if ftruncate(fd, tail.offset) != 0 {
          throw CheckpointError.unwritable(path: path, reason: String(cString: strerror(errno)))
        }
      }
      return prefix + line
    }
  }

  /// The bytes after the journal's last newline and where they start, when the file does not end
  /// with a newline.
  private func tornTail(_ fd: Int32) -> (offset: off_t, bytes: Data)? {
    var info = stat()
    guard fstat(fd, &info) == 0, info.st_size > 0 else { return nil }
    var last: UInt8 = 0
    guard pread(fd, &last, 1, info.st_size - 1) == 1, last != UInt8(ascii: "\n") else { return nil }
    // Entries are short: read back in blocks until a newline or the start of the file.
    var start = info.st_size
    var bytes = Data()
    while start > 0 {
      let size = min(off_t(4096), start)
      var block = [UInt8](repeating: 0, count: Int(size))
      guard pread(fd, &block, Int(size), start - size) == Int(size) else { return nil }
      if let newline = block.lastIndex(of: UInt8(ascii: "\n")) {
        bytes = Data(block[(newline + 1)...]) + bytes
        return (start - size + off_t(newline + 1), bytes)
      }
      bytes = Data(block) + bytes
      start -= size
    }
    return (0, bytes)
  }

  /// Every entry of `lineage`, in order. A torn last line (a kill during an append: no newline
  /// after it) is ignored; any other line that is not an entry throws
  /// ``CheckpointError/corruptJournal(file:line:reason:)``: a write-ahead journal that cannot be
  /// read whole may have lost an intent, and running on would risk a duplicate.
  package func entries(lineage: String) throws -> [JournalEntry] {
    try entries().filter { $0.lineage == lineage }
  }

  /// Every entry of every lineage, in order (see ``entries(lineage:)``). Reads, never writes.
  package func entries() throws -> [JournalEntry] {
    guard let data = try readIfPresent(path) else { return [] }
    let decoder = JSONDecoder()
    let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
    var entries: [JournalEntry] = []
    for (index, line) in lines.enumerated() {
      if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) { continue }
      do {
        entries.append(try decoder.decode(JournalEntry.self, from: Data(line)))
      } catch {
        // The last element of the split is what follows the last newline: a torn line.
        if index == lines.count - 1 { continue }
        let reason =
          (try? JSONSerialization.jsonObject(with: Data(line))) == nil
          ? "invalid JSON in \(line.count) bytes" : "a field is missing or has the wrong type"
        throw CheckpointError.corruptJournal(file: path, line: index + 1, reason: reason)
      }
    }
    return entries
  }

  /// The last entry that counts for each action of the lineage (entries before a step's reset do not).
  package func latest(lineage: String) throws -> [String: JournalEntry] {
    JournalEntry.latest(try entries(lineage: lineage)) { ($0.event, $0.action) }
  }
}

extension JournalEntry {
  /// The last item that counts for each action, in journal order: an item of a `reset` event
  /// takes back every earlier one of its step. `describe` gives an item's event and action (an
  /// entry, or the key an entry is stored under).
  package static func latest<Item>(
    _ items: [Item], _ describe: (Item) -> (event: Event, action: String)
  ) -> [String: Item] {
    var latest: [String: Item] = [:]
    for item in items {
      let (event, action) = describe(item)
      if event == .reset {
        latest = latest.filter { $0.key != action && !$0.key.hasPrefix(action + "/") }
      } else {
        latest[action] = item
      }
    }
    return latest
  }
}

/// The bytes of the file at `path`, or nil when there is none. A file that appears between a
/// first look and the second (another action of the run appending its first line) is read
/// then; only a file that exists and still cannot be read is an error.
func readIfPresent(_ path: String) throws -> Data? {
  if let data = FileManager.default.contents(atPath: path) { return data }
  guard FileManager.default.fileExists(atPath: path) else { return nil }
  do {
    return try Data(contentsOf: URL(fileURLWithPath: path))
  } catch {
    throw CheckpointError.unreadable(
      path: path, reason: "cannot be read: \(error.localizedDescription)")
  }
}
