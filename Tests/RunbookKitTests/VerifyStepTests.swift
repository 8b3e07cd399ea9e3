import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// Guide 9's pieces that need no AWS: what it plans to run, and the diagnosis of common causes.
final class VerifyStepTests: XCTestCase {
  func testThePlanNamesEveryReadAndTheProbe() throws {
    var deployment = try localDeployment()
    deployment.healthCheckUrl = nil
    let action = try XCTUnwrap(VerifyStep().actions(for: deployment).first)
    XCTAssertTrue(action.repeatable)
    XCTAssertEqual(action.effect, .read)
    XCTAssertEqual(Set(action.exportReferences), ["ALB_ARN", "TG_ARN", "CLUSTER_ARN"])
    // Those exist long before the services: in one run with ecs (or update), verify comes after.
    XCTAssertEqual(action.afterSteps, ["ecs", "update"])
    let outline = try XCTUnwrap(action.procedure?.outline).map { line -> String in
      switch line {
      case .command(let command): command.description
      case .note(let note): note.description
      }
    }
    XCTAssertEqual(
      outline.first,
      "aws elbv2 describe-load-balancers --load-balancer-arns <ALB_ARN> --query 'LoadBalancers[0].[DNSName,State.Code]' --output text"
    )
    XCTAssertTrue(
      outline.contains("aws elbv2 describe-target-health --target-group-arn <TG_ARN> --output json")
    )
    // The probe is a command like the others, one GET per run, waiting at most an interval.
    let interval = deployment.operations.healthCheckIntervalSeconds
    XCTAssertTrue(
      outline.contains(
        "runbook-health-probe --timeout \(interval) http://<ALB_DNS>/actuator/health"),
      "\(outline)")
    XCTAssertTrue(
      try XCTUnwrap(action.procedure?.commands).contains(
        HealthProbe.command(
          url: "http://\(ref: "ALB_DNS")/actuator/health", timeout: Double(interval))))
    XCTAssertTrue(
      outline.contains {
        $0.hasPrefix(
          "expect HTTP 200 and \"status\":\"UP\" from GET http://<ALB_DNS>/actuator/health")
      }, "\(outline)")
    for service in ["api-gateway", "user-service", "course-service", "schedule-service"] {
      XCTAssertTrue(
        outline.contains(
          "aws logs filter-log-events --log-group-name /ecs/unisync-\(service) --start-time <START_TIME_MS> --output json"
        ), service)
    }
    // Only the requested services.
    deployment.request = RunRequest(services: ["user-service"])
    let one = try XCTUnwrap(VerifyStep().actions(for: deployment).first?.procedure?.commands)
    XCTAssertTrue(one.contains(VerifyStep.describeServices(["user-service"])))
    XCTAssertFalse(one.contains { $0.description.contains("unisync-api-gateway") })
  }

  func testTheDiagnosisNamesTheCauseAndTheFix() {
    let advice = VerifyStep.diagnose([
      "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed",
      "Target.Timeout",
    ])
    XCTAssertEqual(advice.count, 2)
    XCTAssertTrue(
      advice[0].hasPrefix("ResourceInitializationError: the task could not fetch its secrets"),
      advice[0])
    XCTAssertTrue(advice[0].contains("NAT gateway"))
    XCTAssertTrue(
      advice[1].hasPrefix(
        "Target.Timeout: the load balancer gets no answer from the task: ECS_SG must admit ALB_SG"),
      advice[1])
    XCTAssertEqual(
      VerifyStep.diagnose(["CannotPullContainerError: pull image manifest has been retried"]).count,
      1)
    XCTAssertEqual(VerifyStep.diagnose(["all good"]), [])
  }

  func testOnlyLoopbackHostsCountAsThisMachine() {
    for host in ["127.0.0.1", "127.3.4.5", "localhost", "::1", "[::1]"] {
      XCTAssertTrue(HealthProbe.isLoopback(host), host)
    }
    for host in ["unisync-alb-1.ap-northeast-2.elb.amazonaws.com", "10.0.0.1", "128.0.0.1", ""] {
      XCTAssertFalse(HealthProbe.isLoopback(host), host)
    }
    XCTAssertFalse(HealthProbe.isLoopback(nil))
  }

  // MARK: - The probe's answer line

  func testTheProbesAnswerLineIsParsed() throws {
    let up = try XCTUnwrap(
      HealthProbe.answer(
        fromOutput:
          #"{"error":null,"excerpt":"{\"status\":\"UP\",\"components\":{}}","milliseconds":12,"status":200}"#
          + "\n"))
    XCTAssertEqual(
      up,
      HealthProbe.Answer(
        status: 200, milliseconds: 12, excerpt: #"{"status":"UP","components":{}}"#))
    XCTAssertTrue(up.isUp)
    XCTAssertEqual(up.line, #"HTTP 200 in 12 ms: {"status":"UP","components":{}}"#)

    let down = try XCTUnwrap(
      HealthProbe.answer(
        fromOutput:
          #"{"error":null,"excerpt":"{\"status\":\"DOWN\"}","milliseconds":7,"status":503}"#))
    XCTAssertEqual(down.status, 503)
    XCTAssertFalse(down.isUp)
    // UP in the body is not enough without HTTP 200, nor HTTP 200 without UP.
    XCTAssertFalse(
      HealthProbe.Answer(status: 503, milliseconds: 1, excerpt: #"{"status":"UP"}"#).isUp)
    XCTAssertFalse(HealthProbe.Answer(status: 200, milliseconds: 1, excerpt: "OK").isUp)
    XCTAssertTrue(
      HealthProbe.Answer(status: 200, milliseconds: 1, excerpt: #"{"status" : "UP"}"#).isUp)

    // No answer: the error is what the operator reads.
    let refused = try XCTUnwrap(
      HealthProbe.answer(
        fromOutput: #"{"error":"connection refused","excerpt":"","milliseconds":3,"status":null}"#))
    XCTAssertEqual(
      refused, HealthProbe.Answer(status: nil, milliseconds: 3, excerpt: "connection refused"))
    XCTAssertEqual(refused.line, "no answer in 3 ms: connection refused")
    XCTAssertFalse(refused.isUp)

    // The last line counts; anything else is no answer line at all.
    XCTAssertEqual(
      HealthProbe.answer(
        fromOutput: "warming up\n"
          + #"{"error":"timed out","excerpt":"","milliseconds":5001,"status":null}"# + "\n\n")?
        .excerpt, "timed out")
    for broken in [
      "", "\n", "HTTP 200", #"{"status":200}"#, #"{"status":null,"milliseconds":3,"excerpt":""}"#,
      #"{"status":"200","milliseconds":3,"excerpt":""}"#,
      #"{"status":42,"milliseconds":3,"excerpt":"","error":null}"#,
      #"{"status":200,"milliseconds":-1,"excerpt":"","error":null}"#,
      #"{"status":200,"milliseconds":3,"excerpt":"","error":null}"# + "\nnot json",
    ] {
      XCTAssertNil(HealthProbe.answer(fromOutput: broken), broken)
    }
  }

  func testAProbeRunWithoutAnAnswerLineIsAFailureSayingWhy() throws {
    func output(_ termination: Termination, _ stdout: String, _ stderr: String = "")
      -> ProcessOutput
    {
      ProcessOutput(
        termination: termination, standardOutput: Data(stdout.utf8),
        standardError: Data(stderr.utf8))
    }
    let line = #"{"error":"connection refused","excerpt":"","milliseconds":3,"status":null}"#
    XCTAssertEqual(
      try HealthProbe.answer(of: output(.exited(1), line), shown: "probe").excerpt,
      "connection refused")
    XCTAssertEqual(
      try HealthProbe.answer(
        of: output(.exited(0), #"{"error":null,"excerpt":"ok","milliseconds":3,"status":204}"#),
        shown: "probe"
      ).status, 204)
    // A usage error, a crash or a stray exit status: the probe's own words, never a verdict.
    let usage = output(
      .exited(2), "", "runbook-health-probe: 'ftp://x' is not an http(s) URL\nusage: ...\n")
    let error = assertThrowsNow(ProcedureFailure.self) {
      try HealthProbe.answer(of: usage, shown: "runbook-health-probe --timeout 1 ftp://x")
    }
    XCTAssertEqual(error?.command, "runbook-health-probe --timeout 1 ftp://x")
    XCTAssertEqual(
      error?.reason,
      "the health probe gave no answer line (exit status 2): runbook-health-probe: 'ftp://x' is not an http(s) URL\nusage: ..."
    )
    XCTAssertNotNil(
      assertThrowsNow(ProcedureFailure.self) {
        try HealthProbe.answer(of: output(.signaled(9), line), shown: "probe")
      })
    XCTAssertNotNil(
      assertThrowsNow(ProcedureFailure.self) {
        try HealthProbe.answer(of: output(.exited(3), line), shown: "probe")
      })
  }

  func testTheProbesTimeoutIsWrittenInSeconds() {
    XCTAssertEqual(
      HealthProbe.command(url: "http://127.0.0.1:8080/h", timeout: 5).description,
      "runbook-health-probe --timeout 5 http://127.0.0.1:8080/h")
    XCTAssertEqual(HealthProbe.seconds(2.5), "2.5")
    XCTAssertEqual(HealthProbe.seconds(1.04), "1")
    XCTAssertEqual(HealthProbe.seconds(0.96), "1")
    XCTAssertEqual(HealthProbe.seconds(120), "120")
  }

  // MARK: - Where the probe is

  func testTheProbeStartsFromBesideRunbookButPlanShowsItsName() throws {
    let folder = try makeScratchFolder().path
    let beside = folder + "/" + HealthProbe.tool
    XCTAssertNil(HealthProbe.programPath(besides: folder, path: "/nonexistent"))
    writeFile(beside, contents: Data("#!/bin/sh\nexit 0\n".utf8))
    XCTAssertNil(HealthProbe.programPath(besides: folder, path: "/nonexistent"), "not executable")
    XCTAssertEqual(chmod(beside, 0o755), 0)
    XCTAssertEqual(HealthProbe.programPath(besides: folder, path: "/nonexistent"), beside)
    // Beside runbook comes first; PATH is the fallback.
    XCTAssertEqual(HealthProbe.programPath(besides: folder, path: stubToolPath), beside)
    XCTAssertEqual(
      HealthProbe.programPath(besides: "/nonexistent", path: stubToolPath),
      stubToolPath + "/" + HealthProbe.tool)
    XCTAssertEqual(
      HealthProbe.programPath(besides: nil, path: stubToolPath),
      stubToolPath + "/" + HealthProbe.tool)

    let resolver = Resolver(
      aws: AWSSettings(region: "ap-northeast-2"), secrets: SecretStore(),
      programs: [HealthProbe.tool: beside])
    let command = HealthProbe.command(url: "http://\(ref: "ALB_DNS")/h", timeout: 1)
    let invocation = try resolver.invocation(
      command, values: ["ALB_DNS": "alb-1.example"], scratch: ScratchFiles())
    XCTAssertEqual(invocation.executable, beside)
    XCTAssertEqual(invocation.arguments, ["--timeout", "1", "http://alb-1.example/h"])
    XCTAssertEqual(
      resolver.display(command, values: [:]), "runbook-health-probe --timeout 1 http://<ALB_DNS>/h")
  }

  func testRunVerifyRefusesToStartWithoutTheProbe() async throws {
    let fixture = try EngineFixture(test: self)
    try fixture.seedCheckpoint(Self.seedExports)
    let tools = try makeScratchFolder().path
    writeFile(tools + "/aws", contents: Data("#!/bin/sh\nexit 97\n".utf8))
    XCTAssertEqual(chmod(tools + "/aws", 0o755), 0)
    let step = VerifyStep()
    let error = await assertThrows(UsageError.self) {
      try await fixture.engine([step], environment: ["PATH": tools]).run([step])
    }
    XCTAssertTrue(
      error?.description.hasPrefix(
        "cannot find 'runbook-health-probe' on PATH (runbook-health-probe is built and installed beside runbook)"
      ) == true, error?.description ?? "")
    XCTAssertEqual(fixture.runner.calls.count, 0, "nothing runs")
  }

  func testDoctorSaysWhetherTheProbeIsBesideRunbook() async throws {
    let folder = try makeScratchFolder().path
    let runner = ScriptedRunner()
    runner.on("aws", reply: .failure("scripted: no AWS here"))
    runner.on("docker", reply: .failure("scripted: no daemon"))
    func doctor() async -> String {
      let output = BufferOutput()
      let frontend = Frontend(
        environment: Frontend.Environment(
          output: output, errors: output, inputIsTerminal: false,
          variables: ["TERM": "dumb", "PATH": "/nonexistent"], workingDirectory: packageRoot.path,
          executableDirectory: folder),
        runner: runner)
      _ = await frontend.run([
        "-c", "runbooks/local.json", "--state-dir", folder + "/state", "doctor",
      ])
      return output.text
    }
    func probeLine(_ text: String) -> String {
      text.split(separator: "\n").first { $0.dropFirst(6).hasPrefix("health probe ") }.map(
        String.init)
        ?? text
    }
    let missing = await doctor()
    XCTAssertEqual(
      probeLine(missing),
      "FAIL  health probe     runbook-health-probe not in \(folder) (beside runbook) nor on PATH",
      missing)
    XCTAssertTrue(missing.contains("'run verify' fetches the health URL with it"), missing)
    writeFile(folder + "/" + HealthProbe.tool, contents: Data("#!/bin/sh\nexit 0\n".utf8))
    XCTAssertEqual(chmod(folder + "/" + HealthProbe.tool, 0o755), 0)
    let found = await doctor()
    XCTAssertEqual(
      probeLine(found), "OK    health probe     \(folder)/\(HealthProbe.tool)", found)
    XCTAssertTrue(runner.calls(HealthProbe.tool).isEmpty, "doctor only looks for it")
  }

  // MARK: - The procedure, with a scripted runner

  /// The exports verify reads, as the ecs step records them.
  static func seedExports(_ checkpoint: inout Checkpoint) {
    checkpoint.exports["ALB_ARN"] =
      "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:loadbalancer/app/unisync-alb/1"
    checkpoint.exports["TG_ARN"] =
      "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:targetgroup/unisync-tg/2"
    checkpoint.exports["CLUSTER_ARN"] =
      "arn:aws:ecs:ap-northeast-2:123456789012:cluster/unisync-cluster"
    for service in ["api-gateway", "user-service", "course-service", "schedule-service"] {
      checkpoint.exports[ServiceDiscovery.serviceIDExport(service)] =
        "srv-" + service.replacingOccurrences(of: "-", with: "")
    }
  }

  /// A healthy deployment's reads, and the probe answering with `probe` (in order, the last
  /// repeated).
  func scriptedVerify(_ fixture: EngineFixture, probe: [ScriptedRunner.Reply]) throws {
    let runner = fixture.runner
    runner.answerCallerIdentity()
    runner.on("aws", "--version", reply: .ok("aws-cli/1.45.11 Python/3.11.7 Linux/6.18"))
    runner.on(
      "aws", "elbv2", "describe-load-balancers", reply: .ok("unisync-alb-1.elb.example active"))
    runner.on(
      "aws", "elbv2", "describe-target-health", reply: .ok(#"{"TargetHealthDescriptions":[]}"#))
    let services = fixture.deployment.services.map { service in
      """
      {"serviceName":"\(service.name)","status":"ACTIVE","runningCount":2,"desiredCount":2,"pendingCount":0,\
      "taskDefinition":"arn:aws:ecs:ap-northeast-2:1:task-definition/unisync-\(service.name):1","deployments":[],"events":[]}
      """
    }
    runner.on(
      "aws", "ecs", "describe-services",
      reply: .ok(#"{"failures":[],"services":["# + services.joined(separator: ",") + "]}"))
    runner.on("aws", "logs", "filter-log-events", reply: .ok(#"{"events":[]}"#))
    // Each service's name has two tasks registered in Cloud Map.
    runner.on("aws", "servicediscovery", "list-instances", reply: .ok("10.0.11.7\t10.0.12.9\n"))
    runner.on([HealthProbe.tool], replies: probe)
  }

  func testVerifyReportsEachServicesNameAndFailsWhenOneResolvesToNoTask() async throws {
    let fixture = try EngineFixture(test: self)
    try fixture.seedCheckpoint(Self.seedExports)
    try scriptedVerify(fixture, probe: [.ok(Self.upLine)])
    let instances = ["aws", "servicediscovery", "list-instances", "--service-id"]
    // The user service's tasks are not registered; the course service's Cloud Map service is gone.
    fixture.runner.on(instances + ["srv-userservice"], replies: [.ok("None\n")])
    fixture.runner.on(
      instances + ["srv-courseservice"],
      replies: [
        .failure(
          "An error occurred (ServiceNotFound) when calling the ListInstances operation: Service not found.",
          status: 254)
      ])
    let step = VerifyStep()
    let error = await assertThrows(StepFailure.self) {
      try await fixture.engine([step]).run([step])
    }
    let reason = error?.reason ?? ""
    XCTAssertTrue(
      reason.contains(
        "the name unisync-user-service.unisync.internal resolves to no task (nothing registered in Cloud Map)"
      ), reason)
    XCTAssertTrue(
      reason.contains(
        "the name unisync-course-service.unisync.internal is registered nowhere (Cloud Map answers ServiceNotFound)"
      ), reason)
    XCTAssertFalse(reason.contains("unisync-api-gateway.unisync.internal"), reason)
    XCTAssertTrue(
      fixture.reporter.all.contains(
        .progress(
          step: "verify", action: "verify",
          message:
            "name unisync-api-gateway.unisync.internal: 2 task(s) registered (10.0.11.7 10.0.12.9)")
      ),
      "\(fixture.reporter.all)")
    XCTAssertEqual(fixture.runner.calls("aws", "servicediscovery", "list-instances").count, 4)
  }

  static let upLine =
    #"{"error":null,"excerpt":"{\"status\":\"UP\"}","milliseconds":4,"status":200}"# + "\n"
  static let downLine =
    #"{"error":null,"excerpt":"{\"status\":\"DOWN\"}","milliseconds":4,"status":503}"# + "\n"

  func testVerifyRunsTheProbeThroughTheRunnerAndPassesWhenItSaysUp() async throws {
    let fixture = try EngineFixture(test: self)
    try fixture.seedCheckpoint(Self.seedExports)
    try scriptedVerify(fixture, probe: [.ok(Self.upLine)])
    let step = VerifyStep()
    let summary = try await fixture.engine([step]).run([step])

    XCTAssertEqual(summary.outcomes, ["verify/verify": .read])
    let url = try XCTUnwrap(fixture.deployment.healthCheckUrl)
    let interval = fixture.deployment.operations.healthCheckIntervalSeconds
    XCTAssertEqual(
      fixture.runner.calls(HealthProbe.tool).map(\.argv),
      [[HealthProbe.tool, "--timeout", "\(interval)", url]])
    XCTAssertTrue(
      fixture.reporter.all.contains(
        .commandStarted(
          step: "verify", action: "verify",
          command: "runbook-health-probe --timeout \(interval) \(url)")), "the engine ran it")
    XCTAssertTrue(
      fixture.reporter.all.contains(
        .progress(
          step: "verify", action: "verify",
          message: #"GET \#(url): HTTP 200 in 4 ms: {"status":"UP"}"#)),
      "\(fixture.reporter.all)")
    XCTAssertEqual(try fixture.checkpoint().record("verify", "verify")?.value, "healthy")
    let log = try String(
      contentsOfFile: try XCTUnwrap(AuditLog.latest(in: fixture.state.logsDirectory)),
      encoding: .utf8)
    XCTAssertTrue(
      log.contains(
        "[verify/verify] runbook-health-probe --timeout \(interval) \(url) -> exit status 0"),
      log)
  }

  func testVerifyRetriesTheProbeUntilItsTimeAndFailsWithTheLastAnswer() async throws {
    var fixture = try EngineFixture(test: self)
    fixture.deployment.operations.healthCheckTimeoutSeconds = 1
    fixture.deployment.operations.healthCheckIntervalSeconds = 1
    try fixture.seedCheckpoint(Self.seedExports)
    let refused = ScriptedRunner.Reply(
      stdout: #"{"error":"connection refused","excerpt":"","milliseconds":2,"status":null}"# + "\n",
      termination: .exited(1))
    try scriptedVerify(fixture, probe: [refused, .ok(Self.downLine)])
    let step = VerifyStep()
    let error = await assertThrows(StepFailure.self) {
      try await fixture.engine([step]).run([step])
    }
    let url = try XCTUnwrap(fixture.deployment.healthCheckUrl)
    XCTAssertEqual(fixture.runner.calls(HealthProbe.tool).count, 2, "retried within its time")
    let reason = error?.reason ?? ""
    XCTAssertTrue(reason.hasPrefix("the deployment is not healthy:"), reason)
    XCTAssertTrue(
      reason.contains(
        #"\#(url) is not UP after 2 attempt(s) in 1 s: last HTTP 503 in 4 ms: {"status":"DOWN"}"#),
      reason)
    XCTAssertTrue(reason.contains("HTTP 503: the load balancer has no healthy target"), reason)
    XCTAssertTrue(
      fixture.reporter.all.contains(
        .progress(
          step: "verify", action: "verify",
          message: "GET \(url): no answer in 2 ms: connection refused")),
      "\(fixture.reporter.all)")
  }

  // MARK: - A deployment that is still on its way

  /// `describe-services` of the four services, each with `running` of 2 tasks and its primary
  /// deployment in `rollout` state.
  static func services(_ deployment: Deployment, running: Int, rollout: String)
    -> ScriptedRunner.Reply
  {
    let services = deployment.services.map { service in
      """
      {"serviceName":"\(service.name)","status":"ACTIVE","runningCount":\(running),"desiredCount":2,"pendingCount":\(2 - running),\
      "taskDefinition":"arn:aws:ecs:ap-northeast-2:1:task-definition/unisync-\(service.name):1",\
      "deployments":[{"id":"ecs-svc/1","status":"PRIMARY","rolloutState":"\(rollout)","rolloutStateReason":"ECS deployment ecs-svc/1 \(rollout == "FAILED" ? "failed: tasks failed to start." : "in progress.")","runningCount":\(running),"desiredCount":2}],"events":[]}
      """
    }
    return .ok(#"{"failures":[],"services":["# + services.joined(separator: ",") + "]}")
  }

  /// A verify looking every second for up to `timeout` s, whose `describe-services` answers are
  /// `services` in order (running tasks of 2, rollout state; the last repeated).
  func settlingVerify(timeout: Int, services: [(running: Int, rollout: String)]) throws
    -> EngineFixture
  {
    var fixture = try EngineFixture(test: self)
    fixture.deployment.operations.healthCheckIntervalSeconds = 1
    fixture.deployment.operations.healthCheckTimeoutSeconds = timeout
    try fixture.seedCheckpoint(Self.seedExports)
    try scriptedVerify(fixture, probe: [.ok(Self.upLine)])
    fixture.runner.on(
      ["aws", "ecs", "describe-services", "--cluster"],
      replies: services.map { [deployment = fixture.deployment] in
        Self.services(deployment, running: $0.running, rollout: $0.rollout)
      })
    fixture.runner.on(["aws", "ecs", "list-tasks"], replies: [.ok(#"{"taskArns":[]}"#)])
    return fixture
  }

  /// Right after `run` on AWS: the load balancer provisions and the services' tasks start. Verify
  /// looks again until they have, then judges (and the judgement reads no more than it needs).
  func testVerifyWaitsWhileANewDeploymentSettlesThenJudgesIt() async throws {
    let fixture = try settlingVerify(
      timeout: 30, services: [(0, "IN_PROGRESS"), (1, "IN_PROGRESS"), (2, "COMPLETED")])
    let runner = fixture.runner
    runner.on(
      ["aws", "elbv2", "describe-load-balancers", "--load-balancer-arns"],
      replies: [
        .ok("unisync-alb-1.elb.example provisioning"), .ok("unisync-alb-1.elb.example active"),
      ])
    let step = VerifyStep()
    let summary = try await fixture.engine([step]).run([step])
    XCTAssertEqual(summary.outcomes, ["verify/verify": .read])
    XCTAssertEqual(try fixture.checkpoint().record("verify", "verify")?.value, "healthy")
    // Three looks while it settled; the judgement used the third.
    XCTAssertEqual(runner.calls("aws", "ecs", "describe-services").count, 3)
    XCTAssertEqual(runner.calls("aws", "elbv2", "describe-load-balancers").count, 3)
    let messages = fixture.reporter.all.compactMap { event -> String? in
      if case .progress(_, _, let message) = event { return message }
      return nil
    }
    XCTAssertTrue(
      messages.contains {
        $0.hasPrefix("waiting for the deployment to settle (0 s of at most 30 s): ")
          && $0.contains("the load balancer is provisioning")
          && $0.contains("service api-gateway runs 0 of 2 tasks (deployment in progress)")
      }, "\(messages)")
    XCTAssertTrue(
      messages.contains {
        $0.contains("service schedule-service runs 1 of 2 tasks")
          && !$0.contains("load balancer")
      }, "\(messages)")
    XCTAssertEqual(
      messages.filter { $0.hasPrefix("waiting for the deployment to settle") }.count, 2,
      "a line when what it waits for changes: \(messages)")
    XCTAssertTrue(messages.contains { $0.hasPrefix("settled after ") }, "\(messages)")
    XCTAssertTrue(messages.contains("verdict: healthy"), "\(messages)")
  }

  /// A rollout ECS has already given up on (its circuit breaker) is judged at once, not waited
  /// for; and a deployment that does not settle in the time given is judged when it is up.
  func testVerifyDoesNotWaitForAFailedRolloutAndJudgesWhenItsTimeIsUp() async throws {
    let fixture = try settlingVerify(timeout: 30, services: [(0, "FAILED")])
    let step = VerifyStep()
    let failed = await assertThrows(StepFailure.self) {
      try await fixture.engine([step]).run([step])
    }
    XCTAssertEqual(
      fixture.runner.calls("aws", "ecs", "describe-services").count, 1, "not waited for")
    let reason = failed?.reason ?? ""
    XCTAssertTrue(
      reason.contains(
        "service api-gateway: deployment ecs-svc/1 FAILED (ECS deployment ecs-svc/1 failed"),
      reason)

    // Still starting when the time is up: judged as it is then.
    let late = try settlingVerify(timeout: 3, services: [(0, "IN_PROGRESS")])
    let timedOut = await assertThrows(StepFailure.self) {
      try await late.engine([step]).run([step])
    }
    let looks = late.runner.calls("aws", "ecs", "describe-services").count
    XCTAssertTrue((3...5).contains(looks), "looked every second for 3 s: \(looks)")
    XCTAssertTrue(
      (timedOut?.reason ?? "").contains("service course-service runs 0 of 2 tasks"),
      timedOut?.reason ?? "")
    XCTAssertTrue(
      late.reporter.all.contains {
        if case .progress(_, _, let message) = $0 {
          return message.hasPrefix("still settling after 3 s: ")
        }
        return false
      }, "\(late.reporter.all)")
    let waitLines = late.reporter.all.filter {
      if case .progress(_, _, let message) = $0 {
        return message.hasPrefix("waiting for the deployment to settle")
      }
      return false
    }
    XCTAssertEqual(waitLines.count, 1, "the same wait is not repeated every look: \(waitLines)")
  }

  func testAProbeThatCannotRunFailsVerifyWithItsOwnWords() async throws {
    let fixture = try EngineFixture(test: self)
    try fixture.seedCheckpoint(Self.seedExports)
    try scriptedVerify(
      fixture,
      probe: [.failure("runbook-health-probe: unknown option '--timeout'", status: 2)])
    let step = VerifyStep()
    let error = await assertThrows(StepFailure.self) {
      try await fixture.engine([step]).run([step])
    }
    XCTAssertEqual(fixture.runner.calls(HealthProbe.tool).count, 1, "not retried")
    XCTAssertEqual(
      error?.reason,
      "the health probe gave no answer line (exit status 2): runbook-health-probe: unknown option '--timeout'"
    )
    XCTAssertTrue(
      error?.command.hasPrefix("runbook-health-probe --timeout ") == true,
      "\(String(describing: error))")
  }
}
