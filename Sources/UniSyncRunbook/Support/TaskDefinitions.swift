import Foundation
import RunbookEngine
import RunbookProcess

/// ECS task definitions as the ecs step makes and removes them (guide 6.3): the document a
/// service's template renders, whether a described revision has its settings already, and the
/// deregistration of every revision for `destroy`.
enum TaskDefinitions {
  /// The service's template with what the step knows filled in; the rest are export references.
  static func document(_ deployment: Deployment, _ service: Deployment.Service) -> Argument {
    var variables: [String: Argument] = [
      "FAMILY": .text(ECSStep.family(deployment, service.name)), "SERVICE": .text(service.name),
      "PORT": .text("\(service.port)"), "CPU": .text(deployment.ecs.cpu),
      "MEMORY": .text(deployment.ecs.memory),
      "IMAGE": ECRStep.taggedImage(deployment, service.name),
      "LOG_GROUP": .text(ECSStep.logGroup(deployment, service.name)),
      "DB_PORT": .text("\(deployment.securityGroups.rdsPort)"),
    ]
    if let database = service.database {
      variables["DATABASE"] = .text(database)
      // The service's own user (not the master user, whose password RDS rotates).
      variables["DB_USERNAME"] = .text(DatabaseSetup.user(deployment, service))
      variables["DB_PASSWORD_SECRET"] = DatabaseSetup.passwordSecret(deployment, service)
    }
    return service.taskDefinition.render(variables)
  }

  /// `register-task-definition` of `document` as family `family` (action
  /// `task-definition-NAME`), its ARN exported as `export`; a rerun whose latest active revision
  /// has the same settings registers nothing, and a killed run's revision is found by the family.
  /// A family whose latest active revision does not carry this deployment's tag is someone
  /// else's (a shared account): the step stops before registering, since a new revision becomes
  /// the family's latest, which whoever names the family without a revision then runs.
  static func registration(
    _ deployment: Deployment, step: String, name: String, family: String, document: Argument,
    export: String, summary: String
  ) -> Action {
    Action(
      name: "task-definition-\(name)", summary: summary, effect: .write,
      command: .aws(
        "ecs", "register-task-definition", "--cli-input-json",
        .document("\(family)-task.json", document),
        "--tags", deployment.ecsTagList(name: family, action: "\(step)/task-definition-\(name)"),
        "--query", "taskDefinition.taskDefinitionArn", "--output", "text"),
      capture: Capture(
        export: export,
        pattern: arnPattern("ecs", "task-definition/", name: family, suffix: ":[0-9]+")),
      precheck: Precheck(
        .aws(
          "ecs", "describe-task-definition", "--task-definition", .text(family), "--include",
          "TAGS", "--query", "{taskDefinition: taskDefinition, tags: tags}", "--output", "json"),
        rule: "the latest active revision of \(family) has the same settings",
        refusal: { output, _ in
          guard let described = JSONValue(parsing: output),
            let latest = described["taskDefinition"], latest.objectValue != nil,
            latest["status"]?.stringValue ?? "ACTIVE" == "ACTIVE",
            !(described["tags"]?.arrayValue ?? []).contains(where: {
              $0["key"]?.stringValue == OwnershipTag.deployment
                && $0["value"]?.stringValue == deployment.name
            })
          else { return nil }
          return
            "task definition family '\(family)' has revisions this deployment did not register (its latest active one has no tag \(OwnershipTag.deployment)=\(deployment.name)): "
            + "a new revision would become that family's latest, which whoever names the family without a revision then runs; "
            + "set ecs.familyPrefix to a prefix of this deployment's own, or deregister those revisions if they are yours"
        }
      ) { output, values in
        JSONValue(parsing: output)?["taskDefinition"].flatMap {
          sameSettings(wanted: document, values: values, latest: $0)
        }
      },
      after: ["log-group-\(name)"],
      settledBy: .nothingToFind(unlessListedBy: "task-definition-families", name: family))
  }

  /// The ARN of the described revision when it has every setting of `wanted` (AWS adds defaults,
  /// so only the settings the document gives are compared); nil when it differs.
  static func sameSettings(wanted: Argument, values: [String: String], latest theirs: JSONValue)
    -> String?
  {
    guard let text = wanted.text(values: values),
      var mine = JSONValue(parsing: text)?.objectValue, theirs.objectValue != nil,
      theirs["status"]?.stringValue ?? "ACTIVE" == "ACTIVE",
      let arn = theirs["taskDefinitionArn"]?.stringValue
    else { return nil }
    mine["tags"] = nil
    return jsonContains(theirs, .object(mine)) ? arn : nil
  }

  /// Deregisters every active revision of a family that carries this deployment's tag. The tag
  /// stays on a deregistered revision, so the revisions are those both tagged and active: a
  /// destroy resumed after an interruption goes on from the first revision still active.
  static func deregisterRevisions(
    _ deployment: Deployment, _ service: String, after: [String]
  ) -> Action {
    let family = ECSStep.family(deployment, service)
    let list = Command.aws(
      "resourcegroupstaggingapi", "get-resources", "--resource-type-filters", "ecs:task-definition",
      "--tag-filters",
      .text(
        #"[{"Key":"# + jsonString(OwnershipTag.deployment) + #","Values":["#
          + jsonString(deployment.name) + "]}]"),
      "--query", "ResourceTagMappingList[].ResourceARN", "--output", "text")
    let active = Command.aws(
      "ecs", "list-task-definitions", "--family-prefix", .text(family), "--status", "ACTIVE",
      "--query", "taskDefinitionArns", "--output", "text")
    let deregister = deregister(.ref("TASK_DEFINITION_ARN"))
    let procedure = Procedure(
      "deregister the task definitions of \(family)",
      outline: [.command(list), .command(active), .command(deregister)]
    ) { context in
      func words(_ command: Command) async throws -> [String] {
        try await context.output(command).split(whereSeparator: \.isWhitespace).map(String.init)
      }
      let stillActive = Set(try await words(active))
      let arns = try await words(list).filter {
        $0.contains(":task-definition/\(family):") && stillActive.contains($0)
      }
      for arn in arns {
        let command = Self.deregister(.text(arn))
        let result = try await context.run(command)
        if result.succeeded {
          context.progress("deregistered \(arn.split(separator: "/").last ?? "")")
          continue
        }
        // Deregistered already (an earlier, interrupted destroy): nothing to do.
        let status = try await context.run(
          .aws(
            "ecs", "describe-task-definition", "--task-definition", .text(arn), "--query",
            "taskDefinition.status", "--output", "text"))
        if status.succeeded,
          status.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) != "ACTIVE"
        {
          continue
        }
        throw context.failure(of: command, result)
      }
      return "\(arns.count) revision(s)"
    }
    return Action(
      name: "deregister-task-definitions-\(service)",
      summary: "deregister the revisions of \(family)",
      effect: .write, command: deregister, after: after, procedure: procedure,
      deletes: "task-definition-\(service)")
  }

  private static func deregister(_ taskDefinition: Argument) -> Command {
    .aws(
      "ecs", "deregister-task-definition", "--task-definition", taskDefinition,
      "--query", "taskDefinition.status", "--output", "text")
  }
}
