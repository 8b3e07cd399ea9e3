import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// verify's probe of the health URL: one GET per run of the `runbook-health-probe` program (built
/// beside `runbook`; it fetches with Foundation's URLSession), judged here the way Spring Boot's
/// actuator answers: HTTP 200 and `"status":"UP"` in the body.
///
/// The fetch is a separate program so that `runbook` itself does not link FoundationNetworking
/// (and libcurl with its TLS, LDAP and Kerberos libraries), which every start of every command
/// would pay. Like every other command, the probe is a ``Command`` value: `plan` shows it, the
/// engine runs it (audit log, Ctrl-C) and tests match it.
package enum HealthProbe {
  /// The program's name; ``programPath(besides:path:)`` finds it.
  package static let tool = "runbook-health-probe"

  /// Its exit statuses (the program's usage text says the same).
  package enum Exit {
    /// An HTTP answer came, whatever its status.
    package static let answered: Int32 = 0
    /// No HTTP answer: refused, timed out, not resolvable (the line says which).
    package static let noAnswer: Int32 = 1
    /// The arguments were wrong; nothing was fetched.
    package static let usage: Int32 = 2
  }

  /// One GET of `url`, waiting at most `timeout` seconds.
  package static func command(url: Argument, timeout: Double) -> Command {
    Command(tool: tool, arguments: ["--timeout", .text(seconds(timeout)), url])
  }

  /// A number of seconds as the program reads it: `5`, `2.5`.
  static func seconds(_ value: Double) -> String {
    let tenths = (value * 10).rounded()
    return tenths.truncatingRemainder(dividingBy: 10) == 0
      ? String(Int(tenths / 10)) : String(format: "%.1f", tenths / 10)
  }

  /// Where the program is: beside the running `runbook` (`directory`, the folder of
  /// `/proc/self/exe`), where `swift build` and an installation put both; else the first one on
  /// PATH; nil when there is none.
  package static func programPath(besides directory: String?, path: String?) -> String? {
    if let directory, let found = findExecutable(directory + "/" + tool) { return found }
    return findExecutable(tool, path: path)
  }

  /// What one GET produced.
  package struct Answer: Sendable, Hashable {
    /// The HTTP status, or nil when no answer came (refused, timed out, not resolvable).
    package var status: Int?
    package var milliseconds: Int
    /// The body's first 200 characters on one line, or why no answer came.
    package var excerpt: String

    package init(status: Int?, milliseconds: Int, excerpt: String) {
      self.status = status
      self.milliseconds = milliseconds
      self.excerpt = excerpt
    }

    package var isUp: Bool {
      status == 200
        && excerpt.range(of: #""status"\s*:\s*"UP""#, options: .regularExpression) != nil
    }

    package var line: String {
      let code = status.map { "HTTP \($0)" } ?? "no answer"
      return "\(code) in \(milliseconds) ms: \(excerpt)"
    }
  }

  /// The line the program prints:
  /// `{"error":null,"excerpt":"{\"status\":\"UP\"}","milliseconds":12,"status":200}`.
  private struct Report: Decodable {
    var status: Int?
    var milliseconds: Int
    var excerpt: String?
    var error: String?
  }

  /// The answer in the program's output (its last line), or nil when there is no such line.
  package static func answer(fromOutput text: String) -> Answer? {
    guard
      let line = text.split(whereSeparator: \.isNewline).last(where: {
        !$0.allSatisfy(\.isWhitespace)
      }),
      let report = try? JSONDecoder().decode(Report.self, from: Data(line.utf8)),
      report.milliseconds >= 0
    else { return nil }
    if let status = report.status {
      guard (100...599).contains(status) else { return nil }
      return Answer(
        status: status, milliseconds: report.milliseconds, excerpt: report.excerpt ?? "")
    }
    // No HTTP answer: the line must say why.
    guard let error = report.error, !error.isEmpty else { return nil }
    return Answer(status: nil, milliseconds: report.milliseconds, excerpt: error)
  }

  /// The answer of one run of the program; a run that printed no answer (a usage error, a crash)
  /// is a ``ProcedureFailure`` naming the command and what it wrote on standard error.
  static func answer(of result: ProcessOutput, shown command: String) throws -> Answer {
    let exited: Bool
    if case .exited(let status) = result.termination {
      exited = status == Exit.answered || status == Exit.noAnswer
    } else {
      exited = false
    }
    if exited, let answer = answer(fromOutput: result.stdoutText) { return answer }
    let said = result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)
    throw ProcedureFailure(
      "the health probe gave no answer line (\(result.termination))"
        + (said.isEmpty ? "" : ": \(said)"), command: command)
  }

  /// Whether the host is this machine (127.0.0.0/8, localhost, ::1).
  static func isLoopback(_ host: String?) -> Bool {
    guard let host = host?.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
    else {
      return false
    }
    return host == "localhost" || host == "::1" || host.hasPrefix("127.")
  }
}
