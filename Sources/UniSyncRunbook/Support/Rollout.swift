import Foundation
import RunbookEngine
import RunbookProcess

/// The rollout (or rollback) of one service, and of several side by side: the procedure of
/// ``UpdateStep`` (guide 10, steps 2 and 3).
///
/// The new task definition is the current one with the new image (``derive(_:container:image:)``);
/// the rollout is judged from `describe-services` by ``judge(_:seen:)``, and a failed one goes back
/// to the task definition recorded before it.
struct Rollout: Sendable {
  let context: ProcedureContext
  let deployment: Deployment
  let service: String

  /// What happened to one service.
  enum Result: Sendable {
    case unchanged(taskDefinition: String)
    case updated(taskDefinition: String, deployment: String)
    case rolledBack(taskDefinition: String, failed: String, reason: String)
    case failed(reason: String)

    var label: String {
      switch self {
      case .unchanged: "unchanged"
      case .updated: "updated"
      case .rolledBack: "rolled back"
      case .failed: "FAILED"
      }
    }
  }

  // MARK: Commands

  static func describeService(_ service: String) -> Command {
    .aws(
      "ecs", "describe-services", "--cluster", .ref("CLUSTER_ARN"), "--services", .text(service),
      "--output", "json")
  }

  static func describeTaskDefinition(_ reference: Argument, tags: Bool) -> Command {
    .aws(
      ["ecs", "describe-task-definition", "--task-definition", reference]
        + (tags ? ["--include", "TAGS"] : [])
        + ["--output", "json"])
  }

  static func register(_ document: Argument, tags: Argument) -> Command {
    .aws(
      "ecs", "register-task-definition", "--cli-input-json",
      .document("task-definition.json", document),
      "--tags", tags, "--query", "taskDefinition.taskDefinitionArn", "--output", "text")
  }

  static func updateService(_ service: String, to taskDefinition: Argument) -> Command {
    .ecsService(
      "update-service", service, ["--task-definition", taskDefinition, "--output", "json"])
  }

  // MARK: All services

  /// Runs every service's rollout (at most `--jobs` at once), prints the summary table, and fails
  /// when any service did not end on its new task definition.
  static func run(_ context: ProcedureContext, deployment: Deployment, services: [String])
    async throws -> String
  {
    let outcomes = try await outcomes(context, deployment: deployment, services: services)
    // Ctrl-C stops everything; it is not a service's failure.
    for case .failure(let error) in outcomes where error is Interrupted { throw error }
    let results: [Result] = outcomes.map { outcome in
      switch outcome {
      case .success(let result): result
      case .failure(let error): .failed(reason: (error as? ProcedureFailure)?.reason ?? "\(error)")
      }
    }
    context.progress(table(services, results, rollback: deployment.request.rollback))
    let failures = zip(services, results).compactMap { service, result -> String? in
      switch result {
      case .rolledBack(let definition, let failed, let reason):
        "\(service): deployment \(failed) failed (\(reason)); back on \(short(definition))"
      case .failed(let reason): "\(service): \(reason)"
      default: nil
      }
    }
    if !failures.isEmpty {
      throw ProcedureFailure(
        (deployment.request.rollback
          ? "the rollback did not finish:\n" : "the update did not go through:\n")
          + failures.map { "- \($0)" }.joined(separator: "\n"))
    }
    let changed = results.filter { if case .updated = $0 { true } else { false } }.count
    return "\(changed) of \(services.count) service(s) "
      + (deployment.request.rollback ? "rolled back" : "updated")
  }

  /// Each service's rollout. With migrations (``Migration``): first every service's new revision,
  /// then the migrations of those that move to one, one after the other, and only when all of
  /// them exited 0 the `update-service` calls; a failed migration throws before any.
  private static func outcomes(
    _ context: ProcedureContext, deployment: Deployment, services: [String]
  ) async throws -> [Swift.Result<Result, Error>] {
    @Sendable func rollout(_ service: String) -> Rollout {
      Rollout(context: context, deployment: deployment, service: service)
    }
    let migrations = Migration.services(deployment, services)
    guard !deployment.request.rollback, !migrations.isEmpty else {
      return await services.concurrentMap(limit: context.jobs) { service in
        await Swift.Result.of { try await rollout(service).run() }
      }
    }
    let prepared = await services.concurrentMap(limit: context.jobs) { service in
      await Swift.Result.of { try await rollout(service).prepare() }
    }
    for case .failure(let error) in prepared where error is Interrupted { throw error }
    for service in migrations {
      guard let index = services.firstIndex(of: service.name),
        case .success(let found) = prepared[index], found.running != found.target
      else { continue }
      try await Migration.run(context, deployment, service, taskDefinition: found.target)
    }
    return await Array(zip(services, prepared)).concurrentMap(limit: context.jobs) {
      service, found in
      await Swift.Result.of { try await rollout(service).roll(found.get()) }
    }
  }

  static func table(_ services: [String], _ results: [Result], rollback: Bool = false) -> String {
    var lines = [
      "service".padding(toLength: 20, withPad: " ", startingAt: 0)
        + "result".padding(toLength: 13, withPad: " ", startingAt: 0)
        + "task definition".padding(toLength: 34, withPad: " ", startingAt: 0) + "deployment"
    ]
    for (service, result) in zip(services, results) {
      let definition: String
      let deployment: String
      switch result {
      case .unchanged(let td):
        (definition, deployment) = (short(td), "-")
      case .updated(let td, let id):
        (definition, deployment) = (short(td), "\(id) COMPLETED")
      case .rolledBack(let td, let failed, let reason):
        (definition, deployment) = (short(td), "\(failed) failed: \(reason)")
      case .failed(let reason):
        (definition, deployment) = (
          "?", reason.split(separator: "\n").first.map(String.init) ?? reason
        )
      }
      lines.append(
        service.padding(toLength: 20, withPad: " ", startingAt: 0)
          + (rollback && result.label == "updated" ? "rolled back" : result.label).padding(
            toLength: 13, withPad: " ", startingAt: 0)
          + definition.padding(toLength: 34, withPad: " ", startingAt: 0) + deployment)
    }
    return lines.joined(separator: "\n")
  }

  /// `unisync-api-gateway:3` for a task definition ARN.
  static func short(_ arn: String) -> String {
    String(arn.split(separator: "/").last ?? Substring(arn))
  }

  // MARK: One service

  func say(_ line: String) { context.progress("[\(service)] \(line)") }

  /// What a rollout found before it changes anything: the service and the revision to roll to.
  struct Prepared: Sendable {
    var running: String
    var target: String
    /// The service's events so far (those printed while judging are newer).
    var seen: Set<String>
    /// The PRIMARY deployment, and its id again when the service is settled (``stable(_:)``).
    var primary: String?
    var stable: String?
  }

  func run() async throws -> Result {
    guard deployment.request.rollback else { return try await roll(try await prepare()) }
    let (current, running) = try await active()
    let seen = current.eventIDs
    guard let target = context.values[UpdateStep.rollbackExport(service)] else {
      throw ProcedureFailure(
        "no task definition was recorded before an update of \(service): nothing to go back to")
    }
    if running == target, let primary = stable(current) {
      say("runs \(Self.short(target)) already (deployment \(primary))")
      return .unchanged(taskDefinition: target)
    }
    say("back to \(Self.short(target)) (from \(Self.short(running)))")
    let id = running == target ? current.primary?.id : try await update(to: target)
    if case .failed(let reason) = try await judge(id ?? "?", seen: seen) {
      return .failed(
        reason:
          "the rollback to \(Self.short(target)) (deployment \(id ?? "?")) failed: \(reason)")
    }
    try await context.record(export: ECSStep.taskDefinitionExport(service), value: target)
    return .updated(taskDefinition: target, deployment: id ?? "?")
  }

  /// The service as it is, which must be active.
  func active() async throws -> (ECSService, String) {
    let current = try await describe()
    guard current.status == "ACTIVE", let running = current.taskDefinition else {
      throw ProcedureFailure("service \(service) is not an active service of the cluster")
    }
    return (current, running)
  }

  /// 2. The new task definition: the current one with the new image.
  func prepare() async throws -> Prepared {
    let (current, running) = try await active()
    return Prepared(
      running: running, target: try await taskDefinition(from: running), seen: current.eventIDs,
      primary: current.primary?.id, stable: stable(current))
  }

  /// 3. The update of the service to the prepared revision, judged, rolled back on failure.
  func roll(_ prepared: Prepared) async throws -> Result {
    let (running, target, seen) = (prepared.running, prepared.target, prepared.seen)
    if running == target, let primary = prepared.stable {
      say("runs \(Self.short(target)) already (deployment \(primary)): nothing to do")
      return .unchanged(taskDefinition: target)
    }
    // 3. Update the service, after recording where to go back to. A service already on the
    // target (an earlier run was stopped while it rolled out) is only waited for.
    var id = prepared.primary
    if running != target {
      try await context.record(export: UpdateStep.rollbackExport(service), value: running)
      id = try await update(to: target)
    } else {
      say("a rollout to \(Self.short(target)) is going on: waiting for it")
    }
    switch try await judge(id ?? "?", seen: seen) {
    case .completed:
      try await context.record(export: ECSStep.taskDefinitionExport(service), value: target)
      return .updated(taskDefinition: target, deployment: id ?? "?")
    case .failed(let reason):
      say("deployment \(id ?? "?") failed: \(reason)")
      let previous = context.values[UpdateStep.rollbackExport(service)] ?? running
      say("rolling back to \(Self.short(previous))")
      let after = try await describe()
      let back =
        after.taskDefinition == previous && after.deployments.count == 1
        ? after.primary?.id : try await update(to: previous)
      if case .failed(let second) = try await judge(back ?? "?", seen: after.eventIDs) {
        return .failed(
          reason:
            "deployment \(id ?? "?") failed (\(reason)), and the rollback to \(Self.short(previous)) failed too: \(second)"
        )
      }
      try await context.record(export: ECSStep.taskDefinitionExport(service), value: previous)
      return .rolledBack(taskDefinition: previous, failed: id ?? "?", reason: reason)
    }
  }

  func describe() async throws -> ECSService {
    let answer = try await context.answer(ServicesAnswer.self, of: Self.describeService(service))
    guard let found = answer.services.first else {
      throw ProcedureFailure("service \(service): \(answer.failures.first?.reason ?? "not found")")
    }
    return found
  }

  /// The primary deployment's id when the service is settled: one deployment, done, all tasks running.
  func stable(_ service: ECSService) -> String? {
    guard service.deployments.count == 1, let primary = service.deployments.first,
      (primary.rolloutState ?? "COMPLETED") == "COMPLETED",
      primary.runningCount == primary.desiredCount
    else { return nil }
    return primary.id
  }

  /// `update-service`; returns the id of the deployment it started (the PRIMARY one).
  func update(to taskDefinition: String) async throws -> String? {
    let answer = try await context.answer(
      ServiceUpdateAnswer.self, of: Self.updateService(service, to: .text(taskDefinition)))
    let id = answer.service?.primary?.id
    say("update-service: \(Self.short(taskDefinition)), deployment \(id ?? "?")")
    return id
  }

  // MARK: The task definition

  /// The ARN of a task definition with the new image: the current one when its image is that
  /// already, a revision with exactly that content, or a new revision.
  func taskDefinition(from current: String) async throws -> String {
    let described = try await context.answer(
      TaskDefinitionAnswer.self, of: Self.describeTaskDefinition(.text(current), tags: true))
    guard let definition = described.taskDefinition else {
      throw ProcedureFailure("describe-task-definition \(current) returned no task definition")
    }
    guard
      let imageText = ECRStep.image(deployment, service).text(values: context.values),
      let tag = deployment.imageTag
    else {
      throw ProcedureFailure("the image of \(service) cannot be named (unknown registry values)")
    }
    let derived = try Self.derive(definition, container: service, image: imageText + ":" + tag)
    let differences = Self.differences(Self.registrable(definition), derived)
    if differences.isEmpty {
      say("\(Self.short(current)) runs \(imageText):\(tag) already")
      return current
    }
    for line in differences { say("  \(line)") }
    // The latest revision of the family may be this already (an earlier update stopped after it).
    let family = definition["family"]?.stringValue ?? ""
    let latest = try await context.answer(
      TaskDefinitionAnswer.self, of: Self.describeTaskDefinition(.text(family), tags: false))
    if let latestDefinition = latest.taskDefinition,
      Self.differences(Self.registrable(latestDefinition), derived).isEmpty,
      let arn = latestDefinition["taskDefinitionArn"]?.stringValue
    {
      say("\(Self.short(arn)) has this content already: nothing to register")
      return arn
    }
    let arn = try await context.output(
      Self.register(
        .text(JSONValue.object(derived).jsonText),
        tags: deployment.ecsTagList(name: family, action: "update/rollout"))
    )
    .trimmingCharacters(in: .whitespacesAndNewlines)
    guard arn.contains(":task-definition/") else {
      throw ProcedureFailure(
        "register-task-definition returned '\(arn.prefix(200))', not a task definition ARN")
    }
    say("registered \(Self.short(arn))")
    return arn
  }

  // MARK: Judging the rollout

  enum Verdict {
    case completed
    case failed(String)
  }

  /// Follows deployment `id` until it is COMPLETED with running = desired, or fails (FAILED,
  /// gone, timeout). Prints new service events and each change of the deployment.
  func judge(_ id: String, seen: Set<String>) async throws -> Verdict {
    let timeout = Double(deployment.ecs.deploymentTimeoutSeconds)
    let started = Date()
    var seen = seen
    var last = ""
    while true {
      let service = try await describe()
      for event in service.events.filter({ !seen.contains($0.id ?? "") }).reversed() {
        seen.insert(event.id ?? "")
        say("event: \(event.message ?? "")")
      }
      guard let current = service.deployments.first(where: { $0.id == id }) else {
        return .failed(
          "deployment \(id) is gone: ECS rolled it back (deployment circuit breaker)"
            + (service.events.first?.message.map { "; last event: \($0)" } ?? ""))
      }
      let state = current.rolloutState
      let running = current.runningCount ?? 0
      let desired = current.desiredCount ?? 0
      let line =
        "deployment \(id) \(current.status ?? "?") \(state ?? "-"): running \(running)/\(desired), pending \(current.pendingCount ?? 0), failed tasks \(current.failedTasks ?? 0)"
      if line != last {
        say(line)
        last = line
      }
      if state == "FAILED" {
        return .failed(current.rolloutStateReason ?? "rollout FAILED")
      }
      let done =
        state == "COMPLETED"
        || (state == nil && current.status == "PRIMARY" && service.deployments.count == 1)
      if done && running == desired { return .completed }
      let elapsed = Date().timeIntervalSince(started)
      if elapsed >= timeout {
        return .failed(
          "still \(state ?? "not done") after \(Int(elapsed)) s (ecs.deploymentTimeoutSeconds \(Int(timeout)))"
        )
      }
      try await context.sleep(
        seconds: min(
          Double(deployment.operations.deploymentPollSeconds), max(0.1, timeout - elapsed)))
    }
  }
}

extension Swift.Result where Failure == any Error {
  /// What `body` returned, or the error it threw.
  fileprivate static func of(_ body: () async throws -> Success) async -> Self {
    do { return .success(try await body()) } catch { return .failure(error) }
  }
}
