import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess

/// What `runbook drift` reads back of each kind of resource (``Observation``), kept apart from the
/// steps so that each step file reads as its guide section. Every read asks (`--query`) for only
/// what is compared, in a fixed order, and works the same with the aws CLI v1 and v2.
extension Deployment {
  /// `actions` of the step `step`, each with the read `drift` makes of what it made, where there
  /// is one.
  func observing(_ actions: [Action], step: String) -> [Action] {
    actions.map { action in
      guard action.observation == nil, let observation = observation(of: action, step: step)
      else { return action }
      return action.observed(by: observation)
    }
  }

  private func observation(of action: Action, step: String) -> Observation? {
    switch step {
    case "network": networkObservation(action)
    case "security": securityObservation(action)
    case "rds": action.name == "instance" ? databaseObservation() : nil
    case "secrets": secretObservation(action)
    case "ecr": repositoryObservation(action)
    case "ecs": ecsObservation(action)
    case "lambda": functionObservation(action)
    case "sqs": queueObservation(action)
    default: nil
    }
  }

  // MARK: - 2.1 Route tables, their default routes and associations

  private func networkObservation(_ action: Action) -> Observation? {
    for (key, export, target) in [
      ("public", "PUBLIC_RT_ID", "IGW_ID"), ("private", "PRIVATE_RT_ID", "NAT_ID"),
    ] {
      let describe: (String) -> Command = {
        .aws(
          "ec2", "describe-route-tables", "--route-table-ids", .ref(export), "--query", .text($0),
          "--output", "text")
      }
      let gone: Set<String> = ["InvalidRouteTableID.NotFound"]
      if action.name == "\(key)-route-table" {
        return Observation(
          describe("RouteTables[0].VpcId"), expected: .ref("VPC_ID"), describes: "vpc",
          missingErrors: gone)
      }
      if action.name == "\(key)-default-route" {
        return Observation(
          describe(
            "RouteTables[0].Routes[?DestinationCidrBlock=='0.0.0.0/0'].[GatewayId,NatGatewayId][]"),
          expected: .ref(target), describes: "route 0.0.0.0/0 to", missingErrors: gone)
      }
      for subnet in network.subnets
      where subnet.isPublic == (key == "public") && action.name == "associate-\(subnet.id)" {
        return Observation(
          .aws(
            "ec2", "describe-route-tables", "--route-table-ids", .ref(export), "--query",
            "RouteTables[0].Associations[?SubnetId=='\(ref: subnet.export)'].SubnetId",
            "--output", "text"),
          expected: .ref(subnet.export), describes: "association with subnet",
          missingErrors: gone)
      }
    }
    return nil
  }

  // MARK: - 2.2 Security groups and their rules

  /// A group's inbound rules, one row each (`tcp 80 80 0.0.0.0/0`, `tcp 3306 3306 sg-…`),
  /// compared as a set: a rule added by hand makes the group `changed`. Each rule action reads
  /// its own rule back by the id it recorded: a rule deleted by hand is `missing`.
  private func securityObservation(_ action: Action) -> Observation? {
    let groups = securityGroups
    let range = groups.ecsPortRange
    let rules: [String: (export: String, rows: [Argument])] = [
      "alb-sg": ("ALB_SG", groups.albPorts.map { .text("tcp \($0) \($0) 0.0.0.0/0") }),
      "ecs-sg": (
        "ECS_SG",
        [
          "tcp \(range.lowerBound) \(range.upperBound) \(ref: "ALB_SG")",
          "tcp \(range.lowerBound) \(range.upperBound) \(ref: "ECS_SG")",
        ]
      ),
      "rds-sg": ("RDS_SG", ["tcp \(groups.rdsPort) \(groups.rdsPort) \(ref: "ECS_SG")"]),
    ]
    guard let (export, rows) = rules[action.name] else {
      // A rule: its action's lookup prints the id of the rule it made.
      guard action.name.contains("-ingress-"), let lookup = action.lookup?.command else {
        return nil
      }
      var observation = Observation(
        lookup, expected: "", describes: "rule id", missingErrors: ["InvalidGroup.NotFound"])
      observation.expectsRecordedValue = true
      return observation
    }
    let inbound =
      "SecurityGroupRules[?IsEgress==`false`].[IpProtocol, FromPort, ToPort, CidrIpv4 || ReferencedGroupInfo.GroupId]"
    var observation = Observation(
      .aws(
        "ec2", "describe-security-group-rules", "--filters",
        ec2Filters([], exports: [("group-id", export)]),
        // Rows come in no fixed order; drift compares them sorted.
        "--query", .text(inbound),
        "--output", "text"),
      expected: Argument(
        rows.enumerated().flatMap { index, row in
          (index == 0 ? [] : [Fragment.text("\n")]) + row.fragments
        }), describes: "inbound rules (protocol, ports, source)",
      missingErrors: ["InvalidGroup.NotFound"])
    observation.unordered = true
    observation.presence = .aws(
      "ec2", "describe-security-groups", "--group-ids", .ref(export),
      "--query", "SecurityGroups[0].GroupId", "--output", "text")
    observation.converge =
      "runbook run --refresh security adds a configured rule back; a rule added by hand: 'aws ec2 revoke-security-group-ingress --group-id \(ref: export) --security-group-rule-ids RULE_ID' (its id from 'aws ec2 describe-security-group-rules --filters Name=group-id,Values=\(ref: export)'), or add it to the configuration"
    return observation
  }

  // MARK: - 3 The DB instance

  /// Class, engine version, Multi-AZ and storage. A version given as `8.0` is met by any 8.0.x:
  /// RDS picks the minor version ("CreateDBInstance", EngineVersion, RDS API reference:
  /// https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html).
  private func databaseObservation() -> Observation {
    let version = rds.engineVersion
    let versionRead =
      version.split(separator: ".").count < 3
      ? "(starts_with(EngineVersion, '\(version).') && '\(version)') || EngineVersion"
      : "EngineVersion"
    return Observation(
      .aws(
        "rds", "describe-db-instances", "--db-instance-identifier",
        .text(rds.instanceIdentifier.lowercased()), "--query",
        .text(
          "DBInstances[0].[DBInstanceClass, \(versionRead), MultiAZ, AllocatedStorage]"),
        "--output", "text"),
      expected: .text(
        "\(rds.instanceClass) \(version) \(rds.multiAZ ? "True" : "False") \(rds.allocatedStorageGB)"
      ),
      describes: "class, engine version, Multi-AZ and storage (GB)",
      missingErrors: ["DBInstanceNotFound", "DBInstanceNotFoundFault"])
  }

  // MARK: - 4 Secrets: existence only, never values

  /// `describe-secret` (never `get-secret-value`): the name, or nothing when the secret is
  /// scheduled for deletion.
  private func secretObservation(_ action: Action) -> Observation? {
    guard action.command.operation == "secretsmanager create-secret",
      let export = action.capture?.export, let name = action.command.value(of: "--name")
    else { return nil }
    return Observation(
      .aws(
        "secretsmanager", "describe-secret", "--secret-id", .ref(export),
        "--query", "[@][?DeletedDate==null].Name | [0]", "--output", "text"),
      expected: .text(name), describes: "secret (not scheduled for deletion)",
      missingErrors: ["ResourceNotFoundException"])
  }

  // MARK: - 5 Repositories

  private func repositoryObservation(_ action: Action) -> Observation? {
    guard action.command.operation == "ecr create-repository",
      let export = action.capture?.export,
      let name = action.command.value(of: "--repository-name")
    else { return nil }
    return Observation(
      .aws(
        "ecr", "describe-repositories", "--repository-names", .text(name), "--query",
        "repositories[0].[repositoryUri, imageScanningConfiguration.scanOnPush]",
        "--output", "text"),
      expected: "\(ref: export) True", describes: "repository uri and scan on push",
      missingErrors: ["RepositoryNotFoundException"])
  }
}

extension Command {
  /// The literal text after `option` in the command, if any.
  func value(of option: String) -> String? {
    guard let index = arguments.firstIndex(where: { $0.description == option }),
      index + 1 < arguments.count
    else { return nil }
    let value = arguments[index + 1]
    return value.exportReferences.isEmpty ? value.description : nil
  }
}
