import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// Guide 9: verify the deployment. "Reach it through the ALB DNS name" (9.1) and "check the logs"
/// (9.2), plus what an operator looks at when the answer is not `UP`:
/// - the ALB's DNS name, the health of every target of the target group, and each service's
///   running/desired count, deployment and latest events;
/// - `GET http://<ALB_DNS>/actuator/health` (or the configuration's `healthCheckUrl`) with
///   `runbook-health-probe` (Foundation's URLSession, see ``HealthProbe``), retried for a bounded
///   time, expecting HTTP 200 and `"status":"UP"`; status code, latency and the start of the body
///   are printed;
/// - the recent lines of each service's log group: `aws logs filter-log-events` (the guide's
///   `aws logs tail` exists only in aws CLI v2 and is used only when v2 is installed);
/// - when something is unhealthy: why stopped tasks stopped, and a short diagnosis of the common
///   causes with the likely fix; the run then fails (exit 1) with the reasons.
///
/// `run verify --follow` keeps polling (health, services, new log lines) until Ctrl-C.
/// Against a local emulator (a loopback `--endpoint-url`) the load balancer's DNS name is fake:
/// only a loopback `healthCheckUrl` is probed, never another host.
package struct VerifyStep: Step {
  package let id = "verify"
  package let section = "9"
  package let title = "Verify the deployment"
  package var runsByDefault: Bool { false }

  package init() {}

  /// How far back the log lines go.
  static let logWindowMinutes = 15

  package func actions(for deployment: Deployment) -> [Action] {
    let services = deployment.requestedServices.map(\.name)
    let url: Argument =
      deployment.healthCheckUrl.map { .text($0) }
      ?? "http://\(ref: "ALB_DNS")\(deployment.ecs.healthCheckPath)"
    var outline: [Procedure.Line] = [
      .command(Self.loadBalancer()),
      .command(Self.targetHealth()),
      .command(Self.describeServices(services)),
      .command(
        HealthProbe.command(
          url: url, timeout: Double(deployment.operations.healthCheckIntervalSeconds))),
      .note(
        "expect HTTP 200 and \"status\":\"UP\" from GET \(url), probed every \(deployment.operations.healthCheckIntervalSeconds) s for up to \(deployment.operations.healthCheckTimeoutSeconds) s"
      ),
      .command(Self.version),
    ]
    for service in services {
      outline.append(
        .command(Self.logEvents(Self.logGroup(deployment, service), since: .ref("START_TIME_MS"))))
    }
    outline.append(
      .note(
        "(with aws CLI v2: aws logs tail <LOG_GROUP> --since \(Self.logWindowMinutes)m instead)"))
    outline.append(.note("for a service short of tasks, why its tasks stopped:"))
    outline.append(.command(Self.stoppedTasks("<SERVICE>")))
    outline.append(.command(Self.describeTasks([.ref("STOPPED_TASK_ARNS")])))
    if deployment.request.follow {
      outline.append(
        .note("then again every \(deployment.operations.followIntervalSeconds) s until Ctrl-C"))
    }
    let procedure = Procedure(
      "verify the deployment", outline: outline, requires: ["ALB_ARN", "TG_ARN", "CLUSTER_ARN"]
    ) { context in
      try await Verification(context: context, deployment: deployment, services: services).run()
    }
    return [
      Action(
        name: "verify",
        summary: "health of the load balancer's targets, the services and \(url), recent log lines",
        effect: .read, command: Self.loadBalancer(), procedure: procedure, repeatable: true)
    ]
  }

  // MARK: - Commands

  static func loadBalancer() -> Command {
    .aws(
      "elbv2", "describe-load-balancers", "--load-balancer-arns", .ref("ALB_ARN"),
      "--query", "LoadBalancers[0].[DNSName,State.Code]", "--output", "text")
  }

  static func targetHealth() -> Command {
    .aws(
      "elbv2", "describe-target-health", "--target-group-arn", .ref("TG_ARN"), "--output", "json")
  }

  static func describeServices(_ services: [String]) -> Command {
    .aws(
      ["ecs", "describe-services", "--cluster", .ref("CLUSTER_ARN"), "--services"]
        + services.map { Argument.text($0) } + ["--output", "json"])
  }

  static func stoppedTasks(_ service: String) -> Command {
    .aws(
      "ecs", "list-tasks", "--cluster", .ref("CLUSTER_ARN"), "--service-name", .text(service),
      "--desired-status", "STOPPED", "--output", "json")
  }

  static func describeTasks(_ tasks: [Argument]) -> Command {
    .aws(
      ["ecs", "describe-tasks", "--cluster", .ref("CLUSTER_ARN"), "--tasks"] + tasks + [
        "--output", "json",
      ])
  }

  static let version = Command(tool: "aws", arguments: ["--version"])

  static func logEvents(_ group: String, since: Argument) -> Command {
    .aws(
      "logs", "filter-log-events", "--log-group-name", .text(group), "--start-time", since,
      "--output", "json")
  }

  static func tail(_ group: String) -> Command {
    .aws("logs", "tail", .text(group), "--since", "\(logWindowMinutes)m", "--format", "short")
  }

  /// `/ecs/<family>`, where the awslogs driver of the service's task definition writes.
  static func logGroup(_ deployment: Deployment, _ service: String) -> String {
    "/ecs/" + ECSStep.family(deployment, service)
  }

  // MARK: - Diagnosis

  /// Likely causes and fixes of what AWS says about stopped tasks, targets and the probe.
  static let diagnoses: [(pattern: String, advice: String)] = [
    (
      "ResourceInitializationError",
      "the task could not fetch its secrets or registry credentials before starting: the private subnets need a route to the internet (the network step's NAT gateway and private route table) or VPC endpoints for Secrets Manager and ECR, and the execution role needs secretsmanager:GetSecretValue on the secrets (the ecs step's SecretsManagerAccess policy)"
    ),
    (
      "CannotPullContainerError",
      "the image could not be pulled: check that the tag exists in the repository (push it with 'runbook run update --tag TAG'), that the private subnets reach ECR (NAT gateway or VPC endpoints), and that the execution role has AmazonECSTaskExecutionRolePolicy"
    ),
    (
      "Essential container in task exited",
      "the application itself stopped: read its log lines below; a database service often stops when it cannot reach RDS (the databases of guide 3.3 must exist, RDS_SG must admit ECS_SG)"
    ),
    (
      "OutOfMemory",
      "the container ran out of memory: raise ecs.memory in the configuration and update"
    ),
    (
      "Target.ResponseCodeMismatch",
      "the health check path answers another status than 200: check ecs.healthCheckPath (the application must serve it, e.g. Spring Boot actuator's /actuator/health)"
    ),
    (
      "Target.Timeout",
      "the load balancer gets no answer from the task: ECS_SG must admit ALB_SG on the container port (the security step), or the application starts slowly (raise ecs.healthCheckGracePeriodSeconds)"
    ),
    (
      "Target.FailedHealthChecks",
      "the task fails the load balancer's health checks: read its log lines below, and check the health check path and port"
    ),
    (
      "Elb.InitialHealthChecking", "health checks are only starting: wait a minute and verify again"
    ),
    (
      "Target.NotInUse",
      "the target group is not used by the listener, or the target's zone is not one of the load balancer's"
    ),
    (
      "Target.DeregistrationInProgress",
      "the target is being drained (a deployment is replacing it)"
    ),
    (
      "HTTP 503",
      "the load balancer has no healthy target to send the request to: see the targets and stopped tasks above"
    ),
    (
      "HTTP 502", "the target closed the connection or answered badly: read the gateway's log lines"
    ),
    ("HTTP 504", "the target answered too slowly: read the gateway's log lines"),
    (
      "no answer",
      "nothing answered at the health URL: the ALB security group must admit port 80 from this machine, a new DNS name can take a few minutes to resolve, or (locally) the health server is not running"
    ),
  ]

  /// The advice for every known cause mentioned in `texts`, each once.
  static func diagnose(_ texts: [String]) -> [String] {
    diagnoses.filter { entry in texts.contains { $0.contains(entry.pattern) } }
      .map { "\($0.pattern): \($0.advice)" }
  }
}

/// One verification: what was found, and what is wrong.
private final class Verification: @unchecked Sendable {
  let context: ProcedureContext
  let services: [String]
  var problems: [String] = []
  /// Texts the diagnosis looks for known causes in (stopped reasons, target reasons, probe answers).
  var evidence: [String] = []
  /// Per log group: the newest timestamp shown and the ids of the events shown at it (--follow).
  var logPositions: [String: (Int, Set<String>)] = [:]
  var useTail = false

  let deployment: Deployment

  init(context: ProcedureContext, deployment: Deployment, services: [String]) {
    self.context = context
    self.deployment = deployment
    self.services = services
  }

  func say(_ line: String) { context.progress(line) }

  func run() async throws -> String? {
    let verdict = try await round(first: true)
    guard deployment.request.follow else {
      if problems.isEmpty { return verdict }
      var reason =
        "the deployment is not healthy:\n" + problems.map { "- \($0)" }.joined(separator: "\n")
      let advice = VerifyStep.diagnose(evidence)
      if !advice.isEmpty {
        reason += "\nlikely causes:\n" + advice.map { "- \($0)" }.joined(separator: "\n")
      }
      throw ProcedureFailure(reason)
    }
    while true {
      try await context.sleep(seconds: Double(deployment.operations.followIntervalSeconds))
      problems = []
      evidence = []
      _ = try await round(first: false)
    }
  }

  /// One look at everything; returns a one-line verdict.
  func round(first: Bool) async throws -> String {
    // The reads are independent: ask them all at once, then look at the answers in order.
    let context = self.context
    let services = self.services
    async let version = first ? context.run(VerifyStep.version) : nil
    async let balancer = context.output(VerifyStep.loadBalancer())
    async let targets = context.output(VerifyStep.targetHealth())
    async let states = stride(from: 0, to: services.count, by: 10).map {
      Array(services[$0..<min($0 + 10, services.count)])
    }.concurrentMap(limit: context.jobs) { chunk -> Result<String, Error> in
      do { return .success(try await context.output(VerifyStep.describeServices(chunk))) } catch {
        return .failure(error)
      }
    }
    if let version = try await version {
      useTail = (version.stdoutText + version.stderrText).hasPrefix("aws-cli/2")
    }
    let dns = loadBalancer(try await balancer, verbose: first)
    self.targets(parsedJSON(try await targets), verbose: first)
    let short = try serviceStates(try await states.map { parsedJSON(try $0.get()) }, verbose: first)
    for service in short { try await stoppedTasks(service) }
    try await probe(dns: dns, patient: first)
    try await logs()
    let verdict = problems.isEmpty ? "healthy" : "unhealthy: \(problems.count) problem(s)"
    say((first ? "" : "[\(timestamp())] ") + "verdict: \(verdict)")
    if !problems.isEmpty, !first {
      for advice in VerifyStep.diagnose(evidence) { say("  likely cause: \(advice)") }
    }
    return verdict
  }

  // MARK: 9.1 The load balancer and its targets

  func loadBalancer(_ output: String, verbose: Bool) -> String {
    let words = output.split(whereSeparator: \.isWhitespace).map(String.init)
    let dns = words.first ?? ""
    let state = words.count > 1 ? words[1] : "unknown"
    if verbose { say("load balancer \(deployment.ecs.loadBalancer): \(dns) (\(state))") }
    if state != "active" { problems.append("the load balancer is \(state), not active") }
    return dns
  }

  func targets(_ json: Any, verbose: Bool) {
    let result = json as? [String: Any] ?? [:]
    let descriptions = result["TargetHealthDescriptions"] as? [[String: Any]] ?? []
    if descriptions.isEmpty {
      if verbose {
        say("target group \(deployment.ecs.targetGroup): no targets registered (the probe decides)")
      }
      return
    }
    for description in descriptions {
      let target = description["Target"] as? [String: Any] ?? [:]
      let health = description["TargetHealth"] as? [String: Any] ?? [:]
      let id = "\(target["Id"] as? String ?? "?"):\(target["Port"] as? Int ?? 0)"
      let state = health["State"] as? String ?? "unknown"
      let reason = health["Reason"] as? String
      let detail = [reason, health["Description"] as? String].compactMap { $0 }.joined(
        separator: ": ")
      if verbose || state != "healthy" {
        say("target \(id): \(state)" + (detail.isEmpty ? "" : " (\(detail))"))
      }
      if let reason { evidence.append(reason) }
      if state == "unhealthy" || state == "unavailable" {
        problems.append("target \(id) is \(state)" + (reason.map { " (\($0))" } ?? ""))
      }
    }
  }

  // MARK: The services

  /// Prints each service's state; returns the services with fewer running tasks than desired.
  func serviceStates(_ answers: [Any], verbose: Bool) throws -> [String] {
    var short: [String] = []
    for answer in answers {
      let result = answer as? [String: Any] ?? [:]
      for failure in result["failures"] as? [[String: Any]] ?? [] {
        let arn = failure["arn"] as? String ?? "?"
        problems.append(
          "service \(arn.split(separator: "/").last.map(String.init) ?? arn): \(failure["reason"] as? String ?? "not found")"
        )
      }
      for service in result["services"] as? [[String: Any]] ?? [] {
        let name = service["serviceName"] as? String ?? "?"
        let status = service["status"] as? String ?? "?"
        let running = service["runningCount"] as? Int ?? 0
        let desired = service["desiredCount"] as? Int ?? 0
        let pending = service["pendingCount"] as? Int ?? 0
        let definition =
          (service["taskDefinition"] as? String ?? "?").split(separator: "/").last.map(String.init)
          ?? "?"
        let deployments = service["deployments"] as? [[String: Any]] ?? []
        let primary = deployments.first { $0["status"] as? String == "PRIMARY" }
        var line = "service \(name): \(status), running \(running)/\(desired)"
        if pending > 0 { line += ", pending \(pending)" }
        line += ", task definition \(definition)"
        if let primary {
          line +=
            ", deployment \(primary["id"] as? String ?? "?") \(primary["rolloutState"] as? String ?? "")"
        }
        if deployments.count > 1 {
          line += " (\(deployments.count) deployments: a rollout is going on)"
        }
        say(line)
        if verbose {
          for event in (service["events"] as? [[String: Any]] ?? []).prefix(3) {
            say("  \(eventTime(event["createdAt"])) \(event["message"] as? String ?? "")")
          }
        }
        if status != "ACTIVE" { problems.append("service \(name) is \(status)") }
        if running < desired {
          problems.append("service \(name) runs \(running) of \(desired) tasks")
          short.append(name)
        }
        if primary?["rolloutState"] as? String == "FAILED" {
          problems.append(
            "service \(name): deployment \(primary?["id"] as? String ?? "?") FAILED (\(primary?["rolloutStateReason"] as? String ?? "no reason given"))"
          )
        }
      }
    }
    return short
  }

  /// Why the stopped tasks of a service stopped (ECS keeps them about an hour).
  func stoppedTasks(_ service: String) async throws {
    let list = try await context.json(VerifyStep.stoppedTasks(service)) as? [String: Any] ?? [:]
    let arns = (list["taskArns"] as? [String] ?? []).prefix(5).map { Argument.text($0) }
    guard !arns.isEmpty else { return }
    let described =
      try await context.json(VerifyStep.describeTasks(Array(arns))) as? [String: Any] ?? [:]
    for task in described["tasks"] as? [[String: Any]] ?? [] {
      let id =
        (task["taskArn"] as? String ?? "?").split(separator: "/").last.map(String.init) ?? "?"
      var reasons = [task["stoppedReason"] as? String].compactMap { $0 }
      for container in task["containers"] as? [[String: Any]] ?? [] {
        if let reason = container["reason"] as? String { reasons.append(reason) }
        if let code = container["exitCode"] as? Int, code != 0 {
          reasons.append("\(container["name"] as? String ?? "container") exit code \(code)")
        }
      }
      say("  stopped task \(service)/\(id): \(reasons.joined(separator: "; "))")
      evidence += reasons
    }
  }

  // MARK: The health URL

  func probe(dns: String, patient: Bool) async throws {
    let operations = deployment.operations
    let text = deployment.healthCheckUrl ?? "http://\(dns)\(deployment.ecs.healthCheckPath)"
    guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https" else {
      problems.append("the health URL '\(text)' is not an http(s) URL")
      return
    }
    if let endpoint = AWSSettings.endpointURL(in: context.toolArguments[AWSCLI.tool] ?? []), HealthProbe.isLoopback(URL(string: endpoint)?.host),
      !HealthProbe.isLoopback(url.host)
    {
      // A local emulator's load balancer has a made-up name: never send anything to it.
      problems.append(
        "not probing \(text): the AWS endpoint is an emulator on this machine, whose load balancer does not exist; set healthCheckUrl to a server on this machine"
      )
      return
    }
    let deadline = Date().addingTimeInterval(
      Double(patient ? operations.healthCheckTimeoutSeconds : 0))
    var attempt = 0
    while true {
      attempt += 1
      try context.checkInterrupted()
      let remaining = max(1, deadline.timeIntervalSinceNow)
      let command = HealthProbe.command(
        url: .text(text), timeout: min(Double(operations.healthCheckIntervalSeconds), remaining))
      let answer = try HealthProbe.answer(
        of: try await context.run(command), shown: context.shown(command))
      say("GET \(text): \(answer.line)" + (attempt > 1 ? " (attempt \(attempt))" : ""))
      if answer.isUp { return }
      if Date() >= deadline {
        let what = answer.status.map { "HTTP \($0)" } ?? "no answer"
        evidence.append(what)
        problems.append(
          "\(text) is not UP after \(attempt) attempt(s)"
            + (patient ? " in \(operations.healthCheckTimeoutSeconds) s" : "")
            + ": last \(answer.line)")
        return
      }
      try await context.sleep(
        seconds: min(
          Double(operations.healthCheckIntervalSeconds), max(0, deadline.timeIntervalSinceNow)))
    }
  }

  // MARK: 9.2 The logs

  func logs() async throws {
    let count = deployment.operations.logLines
    guard count > 0 else { return }
    let now = Int(Date().timeIntervalSince1970 * 1000)
    let window = VerifyStep.logWindowMinutes
    // One read per service, all at once; printed in the services' order.
    let plans = services.map { service -> (String, String, Command) in
      let group = VerifyStep.logGroup(deployment, service)
      if useTail && logPositions[group] == nil { return (service, group, VerifyStep.tail(group)) }
      let since = logPositions[group]?.0 ?? now - window * 60_000
      return (service, group, VerifyStep.logEvents(group, since: .text(String(since))))
    }
    let context = self.context
    let outputs = await plans.concurrentMap(limit: context.jobs) {
      plan -> Result<ProcessOutput, Error> in
      do { return .success(try await context.run(plan.2)) } catch { return .failure(error) }
    }
    for ((service, group, command), outcome) in zip(plans, outputs) {
      let result = try outcome.get()
      let first = logPositions[group] == nil
      guard result.succeeded else {
        if awsErrorCode(in: result.stderrText) == "ResourceNotFoundException" {
          if first { say("log \(group): the log group does not exist") }
          continue
        }
        throw context.failure(of: command, result)
      }
      if command.arguments.count > 1, command.arguments[1] == "tail" {
        let lines = result.stdoutText.split(separator: "\n").suffix(count)
        say(
          "log \(group): "
            + (lines.isEmpty
              ? "no lines in the last \(window) minutes" : "last \(lines.count) line(s)"))
        for line in lines { say("  [\(service)] \(line)") }
        logPositions[group] = (now, [])
        continue
      }
      let (since, shown) = logPositions[group] ?? (now - window * 60_000, [])
      let json = parsedJSON(result.stdoutText) as? [String: Any] ?? [:]
      let events = (json["events"] as? [[String: Any]] ?? [])
        .filter { !shown.contains($0["eventId"] as? String ?? "") }
        .sorted { ($0["timestamp"] as? Int ?? 0) < ($1["timestamp"] as? Int ?? 0) }
        .suffix(count)
      if first {
        say(
          "log \(group): "
            + (events.isEmpty
              ? "no lines in the last \(window) minutes" : "last \(events.count) line(s)"))
      }
      for event in events {
        let time = eventTime(Double(event["timestamp"] as? Int ?? 0) / 1000)
        let message = (event["message"] as? String ?? "").trimmingCharacters(
          in: .whitespacesAndNewlines)
        say("  [\(service)] \(time) \(message)")
      }
      let newest = events.map { $0["timestamp"] as? Int ?? 0 }.max() ?? since
      let atNewest = Set(
        events.filter { $0["timestamp"] as? Int == newest }.compactMap { $0["eventId"] as? String })
      logPositions[group] = (newest, newest == since ? shown.union(atNewest) : atNewest)
    }
  }

  func parsedJSON(_ text: String) -> Any {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) ?? [String: Any]()
  }

  /// An event time (epoch seconds, or the ISO text aws CLI v2 prints) as `HH:MM:SS`.
  func eventTime(_ value: Any?) -> String {
    if let text = value as? String { return text }
    guard let seconds = value as? Double ?? (value as? Int).map(Double.init) else { return "?" }
    return timestamp(Date(timeIntervalSince1970: seconds))
  }
}
