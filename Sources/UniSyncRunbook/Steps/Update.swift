import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// Guide 10: deploy an update. `runbook run update --tag TAG [--service NAME]...`
///
/// 1. "Build and push the new image": the ecr step's own build and push, with the given tag
///    (`latest` stays where it is), for the named services (default: all).
/// 2. "Register a new task definition (only the image tag changes)": derived from the service's
///    current one (`describe-task-definition`): the image of the service's container changes,
///    the read-only fields AWS adds are dropped, everything else is kept. It is registered only
///    when no revision of the family has exactly that content already, so the same update twice
///    registers nothing. The field-level difference is printed.
/// 3. "Update the service": the current task definition is recorded in the checkpoint first
///    (`ROLLBACK_TASK_DEF_<SERVICE>`), then `update-service`. The rollout is judged by the tool's
///    own loop over `describe-services` (never `aws ecs wait services-stable`, which gives up
///    silently after 10 minutes and calls a rolled-back deployment stable): every new service
///    event and every change of the deployment is printed; the deployment `update-service`
///    started must end COMPLETED with as many running tasks as desired. FAILED, gone (the
///    circuit breaker rolled it back) or still not done after `ecs.deploymentTimeoutSeconds` is a
///    failure: the service goes back to the recorded task definition, that is waited for too, and
///    the run fails naming the deployment and the reason.
///
/// `runbook run update --rollback [--service NAME]...` does the going back on request. Services
/// update side by side (at most `--jobs` at once), each line prefixed with the service's name;
/// a table of what happened to each ends the run.
package struct UpdateStep: Step {
  package let id = "update"
  package let section = "10"
  package let title = "Deploy an update"
  package var runsByDefault: Bool { false }

  package init() {}

  /// `ROLLBACK_TASK_DEF_API_GATEWAY`: the task definition `api-gateway` ran before the last update.
  package static func rollbackExport(_ service: String) -> String {
    "ROLLBACK_TASK_DEF_" + exportSuffix(service)
  }

  package func usageProblem(for deployment: Deployment) -> String? {
    if deployment.request.rollback {
      return deployment.imageTag == nil
        ? nil : "'update --rollback' goes back to the recorded task definitions: it takes no --tag"
    }
    return deployment.imageTag == nil
      ? "'update' needs --tag TAG (the image tag to build, push and deploy), or --rollback" : nil
  }

  package func actions(for deployment: Deployment) -> [Action] {
    let services = deployment.requestedServices
    let rollout = rolloutAction(deployment, services.map(\.name))
    guard !deployment.request.rollback else { return [rollout] }
    // 1. Build and push the new image (the ecr step's code, with this tag).
    let tag: Argument = .text(deployment.imageTag ?? "<TAG>")
    var actions = [ECRStep.login(deployment)]
    for service in services {
      actions += ECRStep().buildAndPush(deployment, service, tag: tag, withLatest: false)
    }
    // All of it runs again on every update, whatever an earlier one recorded.
    actions = actions.map {
      var action = $0
      action.repeatable = true
      return action
    }
    var after = rollout
    after.after = actions.map(\.name)
    return actions + [after]
  }

  /// 2 and 3 (or the rollback) for every service, as one procedure.
  private func rolloutAction(_ deployment: Deployment, _ services: [String]) -> Action {
    let rollback = deployment.request.rollback
    let service = "<SERVICE>"
    let describe = Rollout.describeService(service)
    let update = Rollout.updateService(
      service, to: .ref(rollback ? "ROLLBACK_TASK_DEF_<SERVICE>" : "NEW_TASK_DEFINITION"))
    var outline: [Procedure.Line] = [
      .note("for each of \(services.joined(separator: ", ")) (at most --jobs at once):"),
      .command(describe),
    ]
    if !rollback {
      let image = Argument(
        ECRStep.image(deployment, service).fragments + [
          .text(":" + (deployment.imageTag ?? "<TAG>"))
        ])
      outline += [
        .command(Rollout.describeTaskDefinition(.ref("CURRENT_TASK_DEFINITION"), tags: true)),
        .note(
          "the same task definition with the image of container \(service) set to \(image), read-only fields dropped"
        ),
        .command(
          Rollout.describeTaskDefinition(
            .text("\(deployment.ecs.familyPrefix)-\(service)"), tags: false)),
        .note("when no revision has exactly that content:"),
        .command(
          Rollout.register(
            .text("{...}"), tags: deployment.ecsTagList(name: "<FAMILY>", action: "\(id)/rollout"))),
        .note(
          "record ROLLBACK_TASK_DEF_<SERVICE>=<CURRENT_TASK_DEFINITION> in the checkpoint, then:"),
      ]
    }
    outline += [
      .command(update),
      .note(
        "then every \(deployment.operations.deploymentPollSeconds) s, until that deployment is COMPLETED with running = desired (FAILED, gone, or after \(deployment.ecs.deploymentTimeoutSeconds) s: a failure):"
      ),
      .command(describe),
    ]
    if !rollback {
      outline.append(
        .note("on a failure, back to the recorded task definition, waited for the same way:"))
      outline.append(
        .command(Rollout.updateService(service, to: .ref("ROLLBACK_TASK_DEF_<SERVICE>"))))
    }
    let procedure = Procedure(
      rollback
        ? "roll back \(services.joined(separator: ", "))"
        : "roll out \(services.joined(separator: ", "))",
      outline: outline, requires: ["CLUSTER_ARN"]
    ) { context in
      try await Rollout.run(context, deployment: deployment, services: services)
    }
    return Action(
      name: rollback ? "rollback" : "rollout",
      summary: rollback
        ? "put \(services.joined(separator: ", ")) back on the task definitions recorded before the last update"
        : "register task definitions with the new image and roll them out, judged, rolled back on failure",
      // Safe to run again as it is: it reads the service first, registers only what is missing,
      // and waits for a rollout that is going on.
      effect: .write, command: update, idempotent: true, procedure: procedure, repeatable: true)
  }
}

/// The rollout (or rollback) of one service, and of several side by side.
struct Rollout: Sendable {
  let context: ProcedureContext
  let deployment: Deployment
  let service: String

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

  /// The task definition fields AWS adds, which `register-task-definition` does not take.
  static let readOnlyFields = [
    "taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities",
    "registeredAt",
    "registeredBy", "deregisteredAt",
  ]

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
    .aws(
      "ecs", "update-service", "--cluster", .ref("CLUSTER_ARN"), "--service", .text(service),
      "--task-definition", taskDefinition, "--output", "json")
  }

  // MARK: All services

  /// Runs every service's rollout (at most `--jobs` at once), prints the summary table, and fails
  /// when any service did not end on its new task definition.
  static func run(_ context: ProcedureContext, deployment: Deployment, services: [String]) async throws -> String {
    let outcomes = await services.concurrentMap(limit: context.jobs) {
      service -> Swift.Result<Result, Error> in
      do { return .success(try await Rollout(context: context, deployment: deployment, service: service).run()) } catch {
        return .failure(error)
      }
    }
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

  func run() async throws -> Result {
    let current = try await describe()
    guard current["status"] as? String == "ACTIVE",
      let running = current["taskDefinition"] as? String
    else {
      throw ProcedureFailure("service \(service) is not an active service of the cluster")
    }
    let seen = Set((current["events"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
    if deployment.request.rollback {
      guard let target = context.values[UpdateStep.rollbackExport(service)] else {
        throw ProcedureFailure(
          "no task definition was recorded before an update of \(service): nothing to go back to")
      }
      if running == target, let primary = stable(current) {
        say("runs \(Self.short(target)) already (deployment \(primary))")
        return .unchanged(taskDefinition: target)
      }
      say("back to \(Self.short(target)) (from \(Self.short(running)))")
      let id = running == target ? primaryID(current) : try await update(to: target)
      if case .failed(let reason) = try await judge(id ?? "?", seen: seen) {
        return .failed(
          reason:
            "the rollback to \(Self.short(target)) (deployment \(id ?? "?")) failed: \(reason)")
      }
      try await context.record(export: ECSStep.taskDefinitionExport(service), value: target)
      return .updated(taskDefinition: target, deployment: id ?? "?")
    }

    // 2. The new task definition: the current one with the new image.
    let target = try await taskDefinition(from: running)
    if running == target, let primary = stable(current) {
      say("runs \(Self.short(target)) already (deployment \(primary)): nothing to do")
      return .unchanged(taskDefinition: target)
    }
    // 3. Update the service, after recording where to go back to. A service already on the
    // target (an earlier run was stopped while it rolled out) is only waited for.
    var id = primaryID(current)
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
      let events = Set(
        (after["events"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
      let back =
        after["taskDefinition"] as? String == previous && ecsDeployments(after).count == 1
        ? primaryID(after) : try await update(to: previous)
      if case .failed(let second) = try await judge(back ?? "?", seen: events) {
        return .failed(
          reason:
            "deployment \(id ?? "?") failed (\(reason)), and the rollback to \(Self.short(previous)) failed too: \(second)"
        )
      }
      try await context.record(export: ECSStep.taskDefinitionExport(service), value: previous)
      return .rolledBack(taskDefinition: previous, failed: id ?? "?", reason: reason)
    }
  }

  func describe() async throws -> [String: Any] {
    let result = try await context.json(Self.describeService(service)) as? [String: Any] ?? [:]
    guard let found = (result["services"] as? [[String: Any]])?.first else {
      let reason =
        (result["failures"] as? [[String: Any]])?.first?["reason"] as? String ?? "not found"
      throw ProcedureFailure("service \(service): \(reason)")
    }
    return found
  }

  func primaryID(_ service: [String: Any]) -> String? {
    ecsDeployments(service).first { $0["status"] as? String == "PRIMARY" }?["id"] as? String
  }

  /// The primary deployment's id when the service is settled: one deployment, done, all tasks running.
  func stable(_ service: [String: Any]) -> String? {
    let deployments = ecsDeployments(service)
    guard deployments.count == 1, let primary = deployments.first,
      (primary["rolloutState"] as? String ?? "COMPLETED") == "COMPLETED",
      primary["runningCount"] as? Int == primary["desiredCount"] as? Int
    else { return nil }
    return primary["id"] as? String
  }

  /// `update-service`; returns the id of the deployment it started (the PRIMARY one).
  func update(to taskDefinition: String) async throws -> String? {
    let result =
      try await context.json(Self.updateService(service, to: .text(taskDefinition)))
      as? [String: Any] ?? [:]
    let updated = result["service"] as? [String: Any] ?? [:]
    let id = primaryID(updated)
    say("update-service: \(Self.short(taskDefinition)), deployment \(id ?? "?")")
    return id
  }

  // MARK: The task definition

  /// The ARN of a task definition with the new image: the current one when its image is that
  /// already, a revision with exactly that content, or a new revision.
  func taskDefinition(from current: String) async throws -> String {
    let described =
      try await context.json(Self.describeTaskDefinition(.text(current), tags: true))
      as? [String: Any] ?? [:]
    guard let definition = described["taskDefinition"] as? [String: Any] else {
      throw ProcedureFailure("describe-task-definition \(current) returned no task definition")
    }
    guard
      let imageText = Argument(ECRStep.image(deployment, service).fragments).text(
        values: context.values),
      let tag = deployment.imageTag
    else {
      throw ProcedureFailure("the image of \(service) cannot be named (unknown registry values)")
    }
    let derived = try Self.derive(definition, container: service, image: imageText + ":" + tag)
    let old = Self.registrable(definition)
    let differences = Self.differences(old, derived)
    if differences.isEmpty {
      say("\(Self.short(current)) runs \(imageText):\(tag) already")
      return current
    }
    for line in differences { say("  \(line)") }
    // The latest revision of the family may be this already (an earlier update stopped after it).
    let family = definition["family"] as? String ?? ""
    let latest =
      try await context.json(Self.describeTaskDefinition(.text(family), tags: false))
      as? [String: Any]
    if let latestDefinition = latest?["taskDefinition"] as? [String: Any],
      Self.differences(Self.registrable(latestDefinition), derived).isEmpty,
      let arn = latestDefinition["taskDefinitionArn"] as? String
    {
      say("\(Self.short(arn)) has this content already: nothing to register")
      return arn
    }
    let json = String(
      decoding: try JSONSerialization.data(withJSONObject: derived, options: [.sortedKeys]),
      as: UTF8.self)
    let arn = try await context.output(
      Self.register(
        .text(json), tags: deployment.ecsTagList(name: family, action: "update/rollout"))
    )
    .trimmingCharacters(in: .whitespacesAndNewlines)
    guard arn.contains(":task-definition/") else {
      throw ProcedureFailure(
        "register-task-definition returned '\(arn.prefix(200))', not a task definition ARN")
    }
    say("registered \(Self.short(arn))")
    return arn
  }

  /// A described task definition without the fields AWS adds.
  static func registrable(_ definition: [String: Any]) -> [String: Any] {
    var copy = definition
    for field in readOnlyFields { copy[field] = nil }
    return copy
  }

  /// The described task definition, ready to register, with the image of `container` (or of the
  /// only container) replaced; nothing else changes.
  static func derive(_ definition: [String: Any], container: String, image: String) throws
    -> [String: Any]
  {
    var copy = registrable(definition)
    var containers = copy["containerDefinitions"] as? [[String: Any]] ?? []
    let index =
      containers.firstIndex { $0["name"] as? String == container }
      ?? (containers.count == 1 ? 0 : nil)
    guard let index else {
      throw ProcedureFailure(
        "the task definition has no container named \(container) (containers: \(containers.compactMap { $0["name"] as? String }.joined(separator: ", ")))"
      )
    }
    containers[index]["image"] = image
    copy["containerDefinitions"] = containers
    return copy
  }

  /// `path: old -> new` for every field that differs (list items with a `name` are matched by it).
  static func differences(_ old: Any?, _ new: Any?, path: String = "") -> [String] {
    switch (old, new) {
    case (let a as [String: Any], let b as [String: Any]):
      return Set(a.keys).union(b.keys).sorted().flatMap {
        differences(a[$0], b[$0], path: path.isEmpty ? $0 : "\(path).\($0)")
      }
    case (let a as [Any], let b as [Any]):
      let named = (a + b).allSatisfy { ($0 as? [String: Any])?["name"] is String }
      if named {
        func key(_ item: Any) -> String { (item as? [String: Any])?["name"] as? String ?? "" }
        let names = (a.map(key) + b.map(key)).reduce(into: [String]()) {
          if !$0.contains($1) { $0.append($1) }
        }
        return names.flatMap { name in
          differences(
            a.first { key($0) == name }, b.first { key($0) == name }, path: "\(path)[\(name)]")
        }
      }
      if a.count != b.count { return ["\(path): \(render(a)) -> \(render(b))"] }
      return zip(a, b).enumerated().flatMap { differences($1.0, $1.1, path: "\(path)[\($0)]") }
    default:
      return render(old) == render(new) ? [] : ["\(path): \(render(old)) -> \(render(new))"]
    }
  }

  package static func render(_ value: Any?) -> String {
    guard let value, !(value is NSNull) else { return "(none)" }
    if let text = value as? String { return text }
    if let data = try? JSONSerialization.data(
      withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
    {
      return String(decoding: data, as: UTF8.self)
    }
    return "\(value)"
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
      let events = (service["events"] as? [[String: Any]] ?? []).filter {
        !seen.contains($0["id"] as? String ?? "")
      }
      for event in events.reversed() {
        seen.insert(event["id"] as? String ?? "")
        say("event: \(event["message"] as? String ?? "")")
      }
      let deployments = ecsDeployments(service)
      guard let current = deployments.first(where: { $0["id"] as? String == id }) else {
        let latest = (service["events"] as? [[String: Any]])?.first?["message"] as? String
        return .failed(
          "deployment \(id) is gone: ECS rolled it back (deployment circuit breaker)"
            + (latest.map { "; last event: \($0)" } ?? ""))
      }
      let state = current["rolloutState"] as? String
      let running = current["runningCount"] as? Int ?? 0
      let desired = current["desiredCount"] as? Int ?? 0
      let line =
        "deployment \(id) \(current["status"] as? String ?? "?") \(state ?? "-"): running \(running)/\(desired), pending \(current["pendingCount"] as? Int ?? 0), failed tasks \(current["failedTasks"] as? Int ?? 0)"
      if line != last {
        say(line)
        last = line
      }
      if state == "FAILED" {
        return .failed(current["rolloutStateReason"] as? String ?? "rollout FAILED")
      }
      let done =
        state == "COMPLETED"
        || (state == nil && current["status"] as? String == "PRIMARY" && deployments.count == 1)
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

/// The `deployments` of a described service.
func ecsDeployments(_ service: [String: Any]) -> [[String: Any]] {
  service["deployments"] as? [[String: Any]] ?? []
}
