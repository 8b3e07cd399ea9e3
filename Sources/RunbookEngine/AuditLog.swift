import Foundation
import RunbookProcess
import RunbookState
import Synchronization

/// The per-run log in `<state-dir>/logs/`: every command (secrets masked), its duration, its status,
/// and the values it produced. Appended as the run goes, so a killed run leaves its log behind.
package final class AuditLog: Sendable {
  package let path: String
  private let handle: Mutex<FileHandle?>

  package init(directory: String, date: Date = Date()) {
    let stamp = date.formatted(
      .iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false)
        .timeSeparator(.omitted))
    path = "\(directory)/\(stamp)-\(ProcessInfo.processInfo.processIdentifier).log"
    _ = FileManager.default.createFile(
      atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
    handle = Mutex(FileHandle(forWritingAtPath: path))
  }

  package func write(_ line: String) {
    let text = "\(timestamp()) \(line)\n"
    handle.withLock { handle in
      handle?.seekToEndOfFile()
      handle?.write(Data(text.utf8))
    }
  }

  /// The newest log in a folder, if any.
  package static func latest(in directory: String) -> String? {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    let logs = names.filter { $0.hasSuffix(".log") }
    guard
      let newest = logs.max(by: { modified("\(directory)/\($0)") < modified("\(directory)/\($1)") })
    else { return nil }
    return "\(directory)/\(newest)"
  }

  private static func modified(_ path: String) -> Date {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date)
      ?? .distantPast
  }
}
