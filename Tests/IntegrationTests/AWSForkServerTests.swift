import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// The aws CLI loaded once (`scripts/aws-forkserver.sh`), which `make test` runs every aws call
/// of the tests through: a call forked from it must answer exactly as the aws CLI started afresh,
/// and a call whose shim is killed must not outlive it. Each test starts a server of its own.
final class AWSForkServerTests: XCTestCase {
  /// The aws shim every test puts first on PATH.
  static let shim = repositoryRoot.appendingPathComponent("Tests/Fixtures/bin/aws")
  var folder: URL!
  var socketPath = ""

  override func setUp() async throws {
    folder = FileManager.default.temporaryDirectory.appendingPathComponent(
      "runbook-forkserver-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    guard ProcessInfo.processInfo.environment["RUNBOOK_REAL_AWS"]?.isEmpty == false else {
      throw HarnessError.missing("RUNBOOK_REAL_AWS is not set: run the tests through 'make test'")
    }
    let started = try await script("start")
    socketPath = started.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    XCTAssertEqual(
      socketPath, folder.appendingPathComponent("aws-fork.sock").path, started.stderrText)
  }

  override func tearDown() async throws {
    _ = try? await script("stop")
    try? FileManager.default.removeItem(at: folder)
  }

  private func script(_ command: String) async throws -> ProcessOutput {
    try await ProcessRunner().run(
      Invocation(
        executable: repositoryRoot.appendingPathComponent("scripts/aws-forkserver.sh").path,
        arguments: [command, folder.path], environment: ["RUNBOOK_AWS_FORK": "1"]))
  }

  /// The aws shim, with the fork server (`forked`) or without it.
  private func aws(
    _ arguments: [String], forked: Bool, input: Data? = nil, environment: [String: String] = [:]
  ) async throws -> ProcessOutput {
    var variables = environment
    variables["RUNBOOK_AWS_FORK_SOCKET"] = forked ? socketPath : ""
    variables["AWS_DEFAULT_REGION"] = "eu-west-1"
    return try await ProcessRunner().run(
      Invocation(
        executable: Self.shim.path,
        arguments: arguments, standardInput: input, environment: variables))
  }

  func testAForkedCallAnswersAsAFreshOne() async throws {
    let endpoint = try Emulator.endpoint()
    let queue = "forkserver-\(UUID().uuidString.prefix(8).lowercased())"
    let calls: [(arguments: [String], input: Data?, environment: [String: String])] = [
      (["sts", "get-caller-identity", "--endpoint-url", endpoint], nil, [:]),
      // The call's own environment: text output instead of JSON.
      (
        ["sts", "get-caller-identity", "--endpoint-url", endpoint], nil,
        ["AWS_DEFAULT_OUTPUT": "text"]
      ),
      // Standard input, read by the aws CLI through file:///dev/stdin (as the tool passes secrets).
      (
        [
          "sqs", "create-queue", "--queue-name", queue, "--attributes", "file:///dev/stdin",
          "--endpoint-url", endpoint,
        ],
        Data(#"{"DelaySeconds": "5"}"#.utf8), [:]
      ),
      (
        [
          "sqs", "get-queue-attributes", "--queue-url", "\(endpoint)/123456789012/\(queue)",
          "--attribute-names", "DelaySeconds", "--endpoint-url", endpoint,
        ], nil, [:]
      ),
      // An AWS error (exit 254 or 255 and its message) and a usage error (exit 252).
      (
        ["sqs", "get-queue-url", "--queue-name", queue + "-none", "--endpoint-url", endpoint], nil,
        [:]
      ),
      (["sqs", "list-queues", "--no-such-option", "--endpoint-url", endpoint], nil, [:]),
    ]
    for call in calls {
      let fresh = try await aws(
        call.arguments, forked: false, input: call.input, environment: call.environment)
      let forked = try await aws(
        call.arguments, forked: true, input: call.input, environment: call.environment)
      let shown = call.arguments.joined(separator: " ")
      // All but the last two succeed (an AWS error, a usage error).
      let failing =
        call.arguments.contains("--no-such-option") || call.arguments.contains(queue + "-none")
      XCTAssertEqual(fresh.succeeded, !failing, "\(shown): \(fresh.stderrText)")
      XCTAssertEqual(forked.termination, fresh.termination, "\(shown): \(forked.stderrText)")
      XCTAssertEqual(forked.stdoutText, fresh.stdoutText, shown)
      XCTAssertEqual(forked.stderrText, fresh.stderrText, shown)
    }
    let text = try await aws(
      ["sts", "get-caller-identity", "--endpoint-url", endpoint], forked: true,
      environment: ["AWS_DEFAULT_OUTPUT": "text"])
    XCTAssertFalse(text.stdoutText.contains("{"), text.stdoutText)
    let created = try await aws(
      [
        "sqs", "get-queue-attributes", "--queue-url", "\(endpoint)/123456789012/\(queue)",
        "--attribute-names", "DelaySeconds", "--query", "Attributes.DelaySeconds", "--output",
        "text", "--endpoint-url", endpoint,
      ], forked: true)
    XCTAssertEqual(created.stdoutText, "5\n", "the attributes came through stdin")
  }

  func testACallWhoseShimIsKilledEndsWithIt() async throws {
    let (shim, running) = try await startCallThatNeverGetsAnAnswer()
    kill(shim.processIdentifier, SIGKILL)
    shim.waitUntilExit()
    try await assertGone(running)
  }

  func testCtrlCEndsAForkedCallAsItEndsAFreshOne() async throws {
    // The tool's Ctrl-C: SIGINT to the process group of each child (ProcessRunner).
    let listener = try silentPort()
    var endings: [Termination] = []
    for forked in [false, true] {
      let runner = ProcessRunner()
      let started = Date()
      let invocation = Invocation(
        executable: Self.shim.path,
        arguments: [
          "sqs", "list-queues", "--endpoint-url", "http://127.0.0.1:\(listener.port)",
          "--cli-read-timeout", "600", "--region", "eu-west-1",
        ],
        environment: ["RUNBOOK_AWS_FORK_SOCKET": forked ? socketPath : ""])
      let call = Task { try await runner.run(invocation) }
      // Interrupted once its request has arrived (it waits for the answer).
      var ready = pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0)
      XCTAssertEqual(poll(&ready, 1, 30_000), 1, "the call never connected")
      let connection = accept(listener.fd, nil, nil)
      // The request has arrived once its bytes can be read: the call now waits for the answer.
      var request = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
      XCTAssertEqual(poll(&request, 1, 60_000), 1, "the call sent no request")
      runner.interruptChildren(grace: .seconds(30))
      let output = try await call.value
      close(connection)
      // The read timeout is 600 s: a call that ended well before it was ended by the interrupt.
      XCTAssertLessThan(
        Date().timeIntervalSince(started), 300, "ended by the interrupt, not by the read timeout")
      endings.append(output.termination)
    }
    XCTAssertEqual(endings[1], endings[0], "forked, then fresh")
    try await assertGone([])
  }

  /// A port on 127.0.0.1 that takes connections (the kernel completes them) and never answers.
  private func silentPort() throws -> (fd: Int32, port: UInt16) {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    XCTAssertGreaterThanOrEqual(listener, 0)
    addTeardownBlock { close(listener) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(listener, $0, length) == 0 && listen(listener, 8) == 0
          && getsockname(listener, $0, &length) == 0
      }
    }
    guard bound else { throw HarnessError.missing("a silent port on 127.0.0.1") }
    return (listener, UInt16(bigEndian: address.sin_port))
  }

  /// A call through the shim and the server to a port that takes connections (the kernel
  /// completes them) and never answers: it would wait a minute for its reply. Returns the shim
  /// and the processes the call runs in: one the server forked for the connection, and one
  /// forked from that.
  private func startCallThatNeverGetsAnAnswer() async throws -> (Process, [pid_t]) {
    let port = try silentPort().port
    let shim = Process()
    shim.executableURL = Self.shim
    shim.arguments = [
      "sqs", "list-queues", "--endpoint-url", "http://127.0.0.1:\(port)",
      "--cli-read-timeout", "60", "--region", "eu-west-1",
    ]
    var environment = ProcessInfo.processInfo.environment
    environment["RUNBOOK_AWS_FORK_SOCKET"] = socketPath
    shim.environment = environment
    shim.standardOutput = FileHandle.nullDevice
    shim.standardError = FileHandle.nullDevice
    try shim.run()
    let server = try serverPID()
    var running = descendants(of: server)
    // Waited for, up to a bound only a failing test reaches.
    let deadline = Date().addingTimeInterval(60)
    while running.count < 2, Date() < deadline {
      try await Task.sleep(nanoseconds: 100_000_000)
      running = descendants(of: server)
    }
    XCTAssertEqual(running.count, 2, "the call runs under the server")
    return (shim, running)
  }

  private func serverPID() throws -> pid_t {
    let text = try String(
      contentsOf: folder.appendingPathComponent("aws-fork.pid"), encoding: .utf8)
    return try XCTUnwrap(pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)))
  }

  /// Fails unless the server has no process under it within 5 s.
  private func assertGone(_ call: [pid_t], file: StaticString = #filePath, line: UInt = #line)
    async throws
  {
    let server = try serverPID()
    var running = descendants(of: server)
    for _ in 0..<50 where !running.isEmpty {
      try await Task.sleep(nanoseconds: 100_000_000)
      running = descendants(of: server)
    }
    XCTAssertEqual(running, [], "the call \(call) outlived its shim", file: file, line: line)
  }

  /// The processes under `pid` (children, their children...), from /proc.
  private func descendants(of pid: pid_t) -> [pid_t] {
    var parents: [pid_t: pid_t] = [:]
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
      guard let child = pid_t(entry),
        let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
      else { continue }
      // pid (comm) state ppid ...
      let fields = stat[stat.index(after: close)...].split(separator: " ")
      if fields.count > 1, let parent = pid_t(fields[1]) { parents[child] = parent }
    }
    var found: [pid_t] = []
    var frontier = [pid]
    while let next = frontier.popLast() {
      let children = parents.filter { $0.value == next }.map(\.key)
      found += children
      frontier += children
    }
    return found.sorted()
  }
}
