import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// `runbook-health-probe`, the program verify runs for its GET: built beside the runbook binary,
/// printing the one line that ``HealthProbe/answer(fromOutput:)`` reads. Needs no emulator: a
/// health server on 127.0.0.1 (up, down or silent) answers it.
final class HealthProbeProgramTests: XCTestCase {
  /// The program beside the runbook binary the tests run, as the tool itself finds it.
  func program() throws -> String {
    let directory = URL(fileURLWithPath: try Workspace.binary()).deletingLastPathComponent().path
    guard let path = HealthProbe.programPath(besides: directory, path: "") else {
      throw HarnessError.missing(
        "\(HealthProbe.tool) is not built beside \(try Workspace.binary()) (run 'swift build')")
    }
    return path
  }

  func probe(_ arguments: [String]) async throws -> ProcessOutput {
    try await ProcessRunner().run(Invocation(executable: try program(), arguments: arguments))
  }

  func testAnHTTPAnswerOfAnyStatusIsOneLineExitZero() async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
      "runbook-probe-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }

    let up = try HealthServer(.up, in: folder)
    let upRun = try await probe(["--timeout", "5", up.url])
    XCTAssertEqual(upRun.termination, .exited(HealthProbe.Exit.answered), upRun.stderrText)
    XCTAssertEqual(upRun.stdoutText.filter { $0 == "\n" }.count, 1, upRun.stdoutText)
    let answer = try XCTUnwrap(HealthProbe.answer(fromOutput: upRun.stdoutText), upRun.stdoutText)
    XCTAssertEqual(answer.status, 200)
    XCTAssertEqual(answer.excerpt, #"{"status":"UP","groups":["liveness","readiness"]}"#)
    XCTAssertTrue(answer.isUp)
    XCTAssertLessThan(answer.milliseconds, 5000)
    XCTAssertEqual(up.requests, ["/actuator/health"], "one GET")

    let down = try HealthServer(.down, in: folder)
    let downRun = try await probe(["--timeout", "5", down.url])
    XCTAssertEqual(downRun.termination, .exited(HealthProbe.Exit.answered), downRun.stderrText)
    let downAnswer = try XCTUnwrap(HealthProbe.answer(fromOutput: downRun.stdoutText))
    XCTAssertEqual(downAnswer.status, 503)
    XCTAssertEqual(downAnswer.excerpt, #"{"status":"DOWN"}"#)
    XCTAssertFalse(downAnswer.isUp)
  }

  func testNoAnswerSaysWhyWithinTheTimeout() async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
      "runbook-probe-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }

    let silent = try HealthServer(.hang, in: folder)
    // The server never answers: that the probe ends at all, saying "timed out" after waiting
    // its second, is the bound (a clock in the test would measure the machine's load instead).
    let hung = try await probe(["--timeout", "1", silent.url])
    XCTAssertEqual(hung.termination, .exited(HealthProbe.Exit.noAnswer), hung.stdoutText)
    XCTAssertEqual(HealthProbe.answer(fromOutput: hung.stdoutText)?.excerpt, "timed out")
    XCTAssertNil(HealthProbe.answer(fromOutput: hung.stdoutText)?.status)
    XCTAssertGreaterThanOrEqual(
      HealthProbe.answer(fromOutput: hung.stdoutText)?.milliseconds ?? 0, 950, hung.stdoutText)

    // A port nobody listens on, held by this test (bound, not listening) so that no other
    // process can take it while the probe tries it.
    let (reserved, port) = try refusingPort()
    defer { close(reserved) }
    let refused = try await probe(["--timeout", "2", "http://127.0.0.1:\(port)/actuator/health"])
    XCTAssertEqual(refused.termination, .exited(HealthProbe.Exit.noAnswer), refused.stdoutText)
    XCTAssertEqual(
      HealthProbe.answer(fromOutput: refused.stdoutText)?.excerpt, "connection refused",
      refused.stdoutText)
  }

  /// A socket bound to a port on 127.0.0.1 that does not listen: connections to the port are
  /// refused, and no other process can bind it while the socket is open.
  func refusingPort() throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
      }
    }
    guard fd >= 0, bound else {
      close(fd)
      throw HarnessError.missing("cannot bind a port on 127.0.0.1")
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
  }

  func testBadArgumentsAreAUsageErrorWithNothingFetched() async throws {
    for arguments in [
      [], ["ftp://127.0.0.1/x"], ["--timeout", "0", "http://127.0.0.1/"],
      ["--timeout", "soon", "http://127.0.0.1/"], ["--timeout"],
      ["--verbose", "http://127.0.0.1/"],
      ["http://127.0.0.1/a", "http://127.0.0.1/b"], ["not a url"],
    ] {
      let run = try await probe(arguments)
      XCTAssertEqual(run.termination, .exited(HealthProbe.Exit.usage), "\(arguments)")
      XCTAssertEqual(run.stdoutText, "", "\(arguments)")
      XCTAssertTrue(
        run.stderrText.contains("usage: runbook-health-probe [--timeout SECONDS] URL"),
        "\(arguments): \(run.stderrText)")
    }
  }
}
