import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// One verification: the procedure of ``VerifyStep`` (guide 9). It looks at the load balancer,
/// its targets, the services, the health URL and the logs, and collects what is wrong, with the
/// texts its diagnosis looks for known causes in.
final class Verification: @unchecked Sendable {
  let context: ProcedureContext
  let deployment: Deployment
  let services: [String]
  var problems: [String] = []
  /// Texts the diagnosis looks for known causes in (stopped reasons, target reasons, probe answers).
  var evidence: [String] = []
  /// Per log group, how far its lines have been shown (--follow shows only newer ones).
  var logPositions: [String: LogPosition] = [:]
  var useTail = false

  /// The newest time shown of a log group, and the ids of the events shown at that time (more
  /// may come with the same millisecond).
  struct LogPosition {
    var newest: Int
    var shownAtNewest: Set<String>
  }

  /// The read of one service's log lines.
  struct LogRead: Sendable {
    var service: String
    var group: String
    var command: Command
  }

  init(context: ProcedureContext, deployment: Deployment, services: [String]) {
    self.context = context
    self.deployment = deployment
    self.services = services
  }

  func say(_ line: String) { context.progress(line) }

  func run() async throws -> String? {
    let deadline = Date().addingTimeInterval(
      Double(deployment.operations.healthCheckTimeoutSeconds))
    let settled = try await settle(until: deadline)
    let verdict = try await round(first: true, until: deadline, look: settled)
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
      _ = try await round(first: false, until: Date())
    }
  }

  /// One look at everything; returns a one-line verdict. The first look's probe retries until
  /// `deadline`; `look` is the load balancer and services as just read (by ``settle(until:)``).
  func round(first: Bool, until deadline: Date, look: Look? = nil) async throws -> String {
    // The reads are independent: ask them all at once, then look at the answers in order.
    let context = self.context
    async let version = first ? context.run(VerifyStep.version) : nil
    async let targets = context.output(VerifyStep.targetHealth())
    let read: Look
    if let look { read = look } else { read = try await self.look() }
    if let version = try await version {
      useTail = (version.stdoutText + version.stderrText).hasPrefix("aws-cli/2")
    }
    let dns = loadBalancer(read, verbose: first)
    self.targets(TargetHealthAnswer.parse(try await targets), verbose: first)
    let short = serviceStates(read.services, verbose: first)
    for service in short { try await stoppedTasks(service) }
    try await discovery(verbose: first)
    try await probe(dns: dns, patient: first, until: deadline)
    try await logs()
    let verdict = problems.isEmpty ? "healthy" : "unhealthy: \(problems.count) problem(s)"
    say((first ? "" : "[\(timestamp())] ") + "verdict: \(verdict)")
    if !problems.isEmpty, !first {
      for advice in VerifyStep.diagnose(evidence) { say("  likely cause: \(advice)") }
    }
    return verdict
  }

  /// The load balancer's DNS name and state, and every service.
  struct Look {
    var balancer: String
    var services: [ServicesAnswer]

    /// `describe-load-balancers`' `DNSName State.Code` line, in two.
    var dnsAndState: (dns: String, state: String) {
      let words = balancer.split(whereSeparator: \.isWhitespace).map(String.init)
      return (words.first ?? "", words.count > 1 ? words[1] : "unknown")
    }
  }

  /// `describe-load-balancers`, and `describe-services` of every service ten at a time (the most
  /// one call takes), all at once.
  func look() async throws -> Look {
    async let balancer = context.output(VerifyStep.loadBalancer())
    async let services = readServices()
    return Look(balancer: try await balancer, services: try await services)
  }

  func readServices() async throws -> [ServicesAnswer] {
    let context = self.context
    let chunks = stride(from: 0, to: services.count, by: 10).map {
      Array(services[$0..<min($0 + 10, services.count)])
    }
    let outputs = await chunks.concurrentMap(limit: context.jobs) {
      chunk -> Result<String, Error> in
      do { return .success(try await context.output(VerifyStep.describeServices(chunk))) } catch {
        return .failure(error)
      }
    }
    return try outputs.map { ServicesAnswer.parse(try $0.get()) }
  }

  // MARK: A new deployment settles

  /// On AWS a deployment needs minutes after `run` before it can answer: the load balancer is
  /// `provisioning`, and each new service's tasks are placed, pull their image, start, and pass
  /// the target group's health checks (its deployment stays `IN_PROGRESS` meanwhile). Judged at
  /// once, a deployment on its way looks broken ("runs 0 of 2 tasks"). So, as
  /// `aws ecs wait services-stable` and ecspresso do, verify first looks again every
  /// `operations.healthCheckIntervalSeconds` while only that is seen, until `deadline`; then it
  /// judges. What is wrong already (a FAILED rollout, a missing or inactive service, a load
  /// balancer `failed`) is not waited for. Returns the last look, which the judgement uses (a
  /// settled deployment costs no extra call).
  func settle(until deadline: Date) async throws -> Look {
    let started = Date()
    let timeout = deployment.operations.healthCheckTimeoutSeconds
    var looks = 0
    // A line when what it waits for changes, else once a minute: ten minutes of looks every
    // 5 s would otherwise fill the operator's screen with the same line.
    var shown: (waiting: [String], at: Date)? = nil
    while true {
      looks += 1
      let read = try await look()
      let waiting = Self.settling(read)
      let elapsed = Int(Date().timeIntervalSince(started).rounded())
      if waiting.isEmpty {
        if looks > 1 { say("settled after \(elapsed) s") }
        return read
      }
      if Date() >= deadline {
        say("still settling after \(elapsed) s: \(waiting.joined(separator: "; "))")
        return read
      }
      if shown?.waiting != waiting || Date().timeIntervalSince(shown?.at ?? .distantPast) >= 60 {
        say(
          "waiting for the deployment to settle (\(elapsed) s of at most \(timeout) s): "
            + waiting.joined(separator: "; "))
        shown = (waiting, Date())
      }
      try await context.sleep(
        seconds: min(
          Double(deployment.operations.healthCheckIntervalSeconds),
          max(0, deadline.timeIntervalSinceNow)))
    }
  }

  /// What is still on its way: the load balancer while `provisioning`, each active service with
  /// fewer tasks running than desired while its primary deployment is `IN_PROGRESS`.
  static func settling(_ look: Look) -> [String] {
    var waiting: [String] = []
    if look.dnsAndState.state == "provisioning" {
      waiting.append("the load balancer is provisioning")
    }
    for service in look.services.flatMap(\.services) where service.status == "ACTIVE" {
      let running = service.runningCount ?? 0
      let desired = service.desiredCount ?? 0
      if running < desired, (service.primary?.rolloutState ?? "IN_PROGRESS") == "IN_PROGRESS" {
        waiting.append(
          "service \(service.serviceName ?? "?") runs \(running) of \(desired) tasks (deployment in progress)"
        )
      }
    }
    return waiting
  }

  // MARK: 9.1 The load balancer and its targets

  func loadBalancer(_ look: Look, verbose: Bool) -> String {
    let (dns, state) = look.dnsAndState
    if verbose { say("load balancer \(deployment.ecs.loadBalancer): \(dns) (\(state))") }
    if state != "active" { problems.append("the load balancer is \(state), not active") }
    return dns
  }

  func targets(_ answer: TargetHealthAnswer, verbose: Bool) {
    if answer.descriptions.isEmpty {
      if verbose {
        say("target group \(deployment.ecs.targetGroup): no targets registered (the probe decides)")
      }
      return
    }
    for description in answer.descriptions {
      let id = "\(description.target?.id ?? "?"):\(description.target?.port ?? 0)"
      let state = description.health?.state ?? "unknown"
      let reason = description.health?.reason
      let detail = [reason, description.health?.description].compactMap { $0 }.joined(
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
  func serviceStates(_ answers: [ServicesAnswer], verbose: Bool) -> [String] {
    var short: [String] = []
    for answer in answers {
      for failure in answer.failures {
        let arn = failure.arn ?? "?"
        problems.append(
          "service \(arn.split(separator: "/").last.map(String.init) ?? arn): \(failure.reason ?? "not found")"
        )
      }
      for service in answer.services {
        let name = service.serviceName ?? "?"
        let status = service.status ?? "?"
        let running = service.runningCount ?? 0
        let desired = service.desiredCount ?? 0
        let pending = service.pendingCount ?? 0
        let definition =
          (service.taskDefinition ?? "?").split(separator: "/").last.map(String.init) ?? "?"
        let primary = service.primary
        var line = "service \(name): \(status), running \(running)/\(desired)"
        if pending > 0 { line += ", pending \(pending)" }
        line += ", task definition \(definition)"
        if let primary {
          line += ", deployment \(primary.id ?? "?") \(primary.rolloutState ?? "")"
        }
        if service.deployments.count > 1 {
          line += " (\(service.deployments.count) deployments: a rollout is going on)"
        }
        say(line)
        if verbose {
          for event in service.events.prefix(3) {
            say("  \(event.createdAt?.shown ?? "?") \(event.message ?? "")")
          }
        }
        if status != "ACTIVE" { problems.append("service \(name) is \(status)") }
        if running < desired {
          problems.append("service \(name) runs \(running) of \(desired) tasks")
          short.append(name)
        }
        if primary?.rolloutState == "FAILED" {
          problems.append(
            "service \(name): deployment \(primary?.id ?? "?") FAILED (\(primary?.rolloutStateReason ?? "no reason given"))"
          )
        }
      }
    }
    return short
  }

  /// Why the stopped tasks of a service stopped (ECS keeps them about an hour).
  func stoppedTasks(_ service: String) async throws {
    let list = try await context.answer(TaskListAnswer.self, of: VerifyStep.stoppedTasks(service))
    let arns = list.taskArns.prefix(5).map { Argument.text($0) }
    guard !arns.isEmpty else { return }
    let described = try await context.answer(
      TasksAnswer.self, of: VerifyStep.describeTasks(Array(arns)))
    for task in described.tasks {
      let id = (task.taskArn ?? "?").split(separator: "/").last.map(String.init) ?? "?"
      var reasons = [task.stoppedReason].compactMap { $0 }
      for container in task.containers {
        if let reason = container.reason { reasons.append(reason) }
        if let code = container.exitCode, code != 0 {
          reasons.append("\(container.name ?? "container") exit code \(code)")
        }
      }
      say("  stopped task \(service)/\(id): \(reasons.joined(separator: "; "))")
      evidence += reasons
    }
  }

  // MARK: The health URL

  func probe(dns: String, patient: Bool, until deadline: Date) async throws {
    let operations = deployment.operations
    let text = deployment.healthCheckUrl ?? "http://\(dns)\(deployment.ecs.healthCheckPath)"
    guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https" else {
      problems.append("the health URL '\(text)' is not an http(s) URL")
      return
    }
    let endpoint = AWSSettings.endpointURL(in: context.toolArguments[AWSCLI.tool] ?? [])
    if let endpoint, HealthProbe.isLoopback(URL(string: endpoint)?.host),
      !HealthProbe.isLoopback(url.host)
    {
      // A local emulator's load balancer has a made-up name: never send anything to it.
      problems.append(
        "not probing \(text): the AWS endpoint is an emulator on this machine, whose load balancer does not exist; set healthCheckUrl to a server on this machine"
      )
      return
    }
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
    let reads = services.map { service -> LogRead in
      let group = ECSStep.logGroup(deployment, service)
      if useTail && logPositions[group] == nil {
        return LogRead(service: service, group: group, command: VerifyStep.tail(group))
      }
      let since = logPositions[group]?.newest ?? now - window * 60_000
      return LogRead(
        service: service, group: group,
        command: VerifyStep.logEvents(group, since: .text(String(since))))
    }
    let context = self.context
    let outputs = await reads.concurrentMap(limit: context.jobs) {
      read -> Result<ProcessOutput, Error> in
      do { return .success(try await context.run(read.command)) } catch { return .failure(error) }
    }
    for (read, outcome) in zip(reads, outputs) {
      let (service, group) = (read.service, read.group)
      let result = try outcome.get()
      let first = logPositions[group] == nil
      guard result.succeeded else {
        if awsErrorCode(in: result.stderrText) == "ResourceNotFoundException" {
          if first { say("log \(group): the log group does not exist") }
          continue
        }
        throw context.failure(of: read.command, result)
      }
      if read.command.arguments.count > 1, read.command.arguments[1] == "tail" {
        let lines = result.stdoutText.split(separator: "\n").suffix(count)
        say(
          "log \(group): "
            + (lines.isEmpty
              ? "no lines in the last \(window) minutes" : "last \(lines.count) line(s)"))
        for line in lines { say("  [\(service)] \(line)") }
        logPositions[group] = LogPosition(newest: now, shownAtNewest: [])
        continue
      }
      let position =
        logPositions[group] ?? LogPosition(newest: now - window * 60_000, shownAtNewest: [])
      let events = LogEventsAnswer.parse(result.stdoutText).events
        .filter { !position.shownAtNewest.contains($0.eventId ?? "") }
        .sorted { ($0.timestamp ?? 0) < ($1.timestamp ?? 0) }
        .suffix(count)
      if first {
        say(
          "log \(group): "
            + (events.isEmpty
              ? "no lines in the last \(window) minutes" : "last \(events.count) line(s)"))
      }
      for event in events {
        let time = AWSTime.seconds(Double(event.timestamp ?? 0) / 1000).shown
        let message = (event.message ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        say("  [\(service)] \(time) \(message)")
      }
      let newest = events.map { $0.timestamp ?? 0 }.max() ?? position.newest
      let atNewest = Set(events.filter { $0.timestamp == newest }.compactMap(\.eventId))
      logPositions[group] = LogPosition(
        newest: newest,
        shownAtNewest: newest == position.newest
          ? position.shownAtNewest.union(atNewest) : atNewest)
    }
  }
}
