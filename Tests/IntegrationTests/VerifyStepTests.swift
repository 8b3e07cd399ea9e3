import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// Guide 9 against the real aws CLI and the emulator (part of ``DayTwoTests``: one deployment for
/// verify, update and destroy). The emulator's load balancer name is made up, so the health URL
/// is a server on 127.0.0.1 that the test starts (up, down, or silent).
extension DayTwoTests {
  /// Verify passes against a health server that says UP, follows until Ctrl-C with `--follow`,
  /// fails with exit 1 and the reason when the server answers 503 or not at all, and never sends
  /// anything to the emulator's made-up load balancer name.
  func checkVerify(_ workspace: Workspace) async throws {
    // A line in the gateway's log group, as its tasks would write it.
    _ = try await workspace.aws(
      [
        "logs", "create-log-stream", "--log-group-name", "/ecs/unisync-api-gateway",
        "--log-stream-name", "ecs/api-gateway/1",
      ])
    let now = Int(Date().timeIntervalSince1970 * 1000)
    _ = try await workspace.aws(
      [
        "logs", "put-log-events", "--log-group-name", "/ecs/unisync-api-gateway",
        "--log-stream-name",
        "ecs/api-gateway/1", "--log-events",
        "timestamp=\(now),message=Started GatewayApplication in 4.2 seconds",
      ])

    // UP: exit 0, with what was looked at.
    let up = try HealthServer(.up, in: workspace.directory)
    try workspace.editConfiguration { $0["healthCheckUrl"] = up.url }
    let passed = try await workspace.runLogged(["run", "verify", "--yes"])
    XCTAssertEqual(passed.run.status, 0, passed.run.summary)
    let exports = try workspace.checkpoint().exports
    for expected in [
      "load balancer unisync-alb: \(exports["ALB_DNS"] ?? "?") (active)",
      "service api-gateway: ACTIVE, running 2/2",
      "service schedule-service: ACTIVE, running 2/2",
      "GET \(up.url): HTTP 200 in ",
      #"{"status":"UP""#,
      "[api-gateway] ", "Started GatewayApplication in 4.2 seconds",
      "log /ecs/unisync-user-service: no lines",
      // ECS registered each service's 2 tasks in its Cloud Map service (the strict layer does).
      "name unisync-user-service.unisync.internal: 2 task(s) registered (",
      "name unisync-api-gateway.unisync.internal: 2 task(s) registered (",
      "verdict: healthy",
    ] {
      XCTAssertTrue(
        passed.run.stdout.contains(expected), "missing '\(expected)' in:\n\(passed.run.stdout)")
    }
    XCTAssertEqual(up.requests, ["/actuator/health"])
    let operations = passed.calls.compactMap {
      ($0["argv"] as? [String])?.prefix(2).joined(separator: " ")
    }
    if workspace.usesAWSCLIv2 {
      // The guide's `aws logs tail`, which only v2 has (AWSCLIV2Tests).
      XCTAssertEqual(operations.filter { $0 == "logs tail" }.count, 4, "\(operations)")
      XCTAssertFalse(operations.contains("logs filter-log-events"), "\(operations)")
    } else {
      XCTAssertEqual(
        operations.filter { $0 == "logs filter-log-events" }.count, 4, "\(operations)")
      XCTAssertFalse(operations.contains("logs tail"), "aws CLI v1 has no 'logs tail'")
    }
    XCTAssertTrue(operations.contains("elbv2 describe-target-health"), "\(operations)")
    XCTAssertFalse(passed.calls.contains { $0["write"] as? Bool == true }, "verify changes nothing")
    XCTAssertEqual(try workspace.checkpoint().record("verify", "verify")?.value, "healthy")

    // --follow: looks again every second until Ctrl-C, showing log lines that are new.
    // (One service from here on: each look costs aws calls per service.) Run in the background,
    // it is logged like every other run (the secret scan reads its calls and its output).
    let awsLog = try XCTUnwrap(workspace.environment["RUNBOOK_AWS_LOG"])
    func looks() -> Int {
      loggedAWSCalls(awsLog).filter {
        ($0["argv"] as? [String])?.prefix(2) == ["logs", "filter-log-events"]
      }.count
    }
    let looksBefore = looks()
    let follow = try RunningTool(
      workspace, ["run", "verify", "--yes", "--follow", "--service", "api-gateway"])
    let twice = await follow.wait(for: "verdict: healthy", count: 2, timeout: 120)
    XCTAssertTrue(twice, follow.text)
    _ = try await workspace.aws(
      [
        "logs", "put-log-events", "--log-group-name", "/ecs/unisync-api-gateway",
        "--log-stream-name",
        "ecs/api-gateway/1", "--log-events",
        "timestamp=\(Int(Date().timeIntervalSince1970 * 1000)),message=GET /api/courses 200",
      ])
    let shown = await follow.wait(for: "GET /api/courses 200", timeout: 120)
    XCTAssertTrue(shown, follow.text)
    let stopped = try await follow.interrupt()
    XCTAssertEqual(stopped.status, 130, stopped.text)
    XCTAssertGreaterThanOrEqual(
      looks() - looksBefore, 2, "the background run's aws calls are in the shim's log")
    XCTAssertEqual(
      stopped.text.components(separatedBy: "Started GatewayApplication").count, 2,
      "old lines are shown once")

    // 503: exit 1, the reason and a likely cause; the probe was retried within its bounded time.
    let down = try HealthServer(.down, in: workspace.directory)
    try workspace.editConfiguration { $0["healthCheckUrl"] = down.url }
    let failed = try await workspace.run(["run", "verify", "--yes", "--service", "api-gateway"])
    XCTAssertEqual(failed.status, 1, failed.summary)
    XCTAssertTrue(failed.stderr.contains("the deployment is not healthy"), failed.stderr)
    XCTAssertTrue(failed.stderr.contains("\(down.url) is not UP after"), failed.stderr)
    XCTAssertTrue(
      failed.stderr.contains(#"HTTP 503 in"#) && failed.stderr.contains(#"{"status":"DOWN"}"#),
      failed.stderr)
    XCTAssertTrue(
      failed.stderr.contains(
        "likely causes:\n  - HTTP 503: the load balancer has no healthy target"), failed.stderr)
    XCTAssertGreaterThan(down.requests.count, 1, "the probe is retried")
    XCTAssertTrue(failed.stdout.contains("verdict: unhealthy"), failed.stdout)

    // No answer at all: exit 1 once the bound (3 s of probing) is over, "timed out". (The server
    // never answers: that the run ends at all is the bound; a clock would measure the load.)
    let silent = try HealthServer(.hang, in: workspace.directory)
    try workspace.editConfiguration { $0["healthCheckUrl"] = silent.url }
    let hung = try await workspace.run(["run", "verify", "--yes", "--service", "api-gateway"])
    XCTAssertEqual(hung.status, 1, hung.summary)
    XCTAssertTrue(
      hung.stderr.contains("\(silent.url) is not UP after") && hung.stderr.contains("timed out"),
      hung.stderr)

    // Without healthCheckUrl the URL would be the emulator's made-up ALB name: never contacted.
    try workspace.editConfiguration { $0["healthCheckUrl"] = nil }
    let refused = try await workspace.run(["run", "verify", "--yes", "--service", "api-gateway"])
    XCTAssertEqual(refused.status, 1, refused.summary)
    XCTAssertTrue(
      refused.stderr.contains(
        "not probing http://\(exports["ALB_DNS"] ?? "?")/actuator/health: the AWS endpoint is an emulator on this machine"
      ),
      refused.stderr)
    XCTAssertFalse(
      refused.stdout.contains("GET http://\(exports["ALB_DNS"] ?? "?")"), refused.stdout)
  }
}
