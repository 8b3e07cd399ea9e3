import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// Guide 2.2: the three security groups, chained so that only the ALB is open to the internet,
/// only the ALB reaches the ECS tasks, and only the ECS tasks reach the database.
package struct SecurityGroupsStep: Step {
  package let id = "security"
  package let section = "2.2"
  package let title = "Security groups"

  package init() {}

  package func actions(for deployment: Deployment) -> [Action] {
    let groups = deployment.securityGroups
    var actions: [Action] = []

    // ALB security group: allow HTTP/HTTPS.
    actions.append(group(deployment, key: "alb", groups.alb, export: "ALB_SG"))
    for port in groups.albPorts {
      actions.append(
        ingress(
          deployment, key: "alb-ingress-\(port)", into: (groups.alb.name, "ALB_SG"),
          ports: port...port,
          from: .cidr("0.0.0.0/0")))
    }

    // ECS task security group: allow traffic from the ALB only.
    actions.append(group(deployment, key: "ecs", groups.ecs, export: "ECS_SG"))
    let range = groups.ecsPortRange
    actions.append(
      ingress(
        deployment, key: "ecs-ingress-\(range.lowerBound)-\(range.upperBound)",
        into: (groups.ecs.name, "ECS_SG"),
        ports: range, from: .group(groups.alb.name, "ALB_SG")))
    // What the guide forgot: the services call each other (the gateway calls the user, course and
    // schedule services), and the Lambda function, which runs in ECS_SG too, calls the user
    // service. A group admits nothing from itself unless a rule says so.
    actions.append(
      ingress(
        deployment, key: Self.selfRuleKey(range), into: (groups.ecs.name, "ECS_SG"),
        ports: range, from: .group(groups.ecs.name, "ECS_SG")))

    // RDS security group: allow MySQL access from the ECS tasks.
    actions.append(group(deployment, key: "rds", groups.rds, export: "RDS_SG"))
    actions.append(
      ingress(
        deployment, key: "rds-ingress-\(groups.rdsPort)", into: (groups.rds.name, "RDS_SG"),
        ports: groups.rdsPort...groups.rdsPort, from: .group(groups.ecs.name, "ECS_SG")))
    return deployment.observing(actions, step: id)
  }

  /// `create-security-group` in the VPC, tagged at creation so an interrupted run finds it again.
  /// A group of the same name that lacks the tags is someone else's: used only with `--adopt`.
  private func group(
    _ deployment: Deployment, key: String, _ group: Deployment.SecurityGroup, export: String
  ) -> Action {
    let name = "\(key)-sg"
    let action = "\(id)/\(name)"
    var create = Action.create(
      name, "create security group \(group.name)", export: export, pattern: #"^sg-[0-9a-f]+$"#,
      command: .aws(
        "ec2", "create-security-group", "--group-name", .text(group.name),
        "--description", .text(group.description), "--vpc-id", .ref("VPC_ID"),
        "--tag-specifications",
        deployment.tagSpecifications("security-group", name: group.name, action: action),
        "--query", "GroupId", "--output", "text"),
      lookup: .aws(
        "ec2", "describe-security-groups", "--filters",
        deployment.ownedFilters(action: action, exports: [("vpc-id", "VPC_ID")]),
        "--query", "SecurityGroups[].GroupId", "--output", "text"),
      adoptLookup: .aws(
        "ec2", "describe-security-groups", "--filters",
        ec2Filters([("group-name", [group.name])], exports: [("vpc-id", "VPC_ID")]),
        "--query", "SecurityGroups[].GroupId", "--output", "text"))
    create.alreadyDoneErrors = ["InvalidGroup.Duplicate"]
    return create
  }

  /// Where an ingress rule admits traffic from.
  enum Source {
    case cidr(String)
    /// Another group of the step: its name (for the summary) and its export.
    case group(String, String)
  }

  /// One `authorize-security-group-ingress` as an exact `--ip-permissions` document. A rule that
  /// exists already (added by hand, or by an interrupted run) counts as done.
  private func ingress(
    _ deployment: Deployment, key: String, into target: (name: String, export: String),
    ports: ClosedRange<Int>, from source: Source
  ) -> Action {
    let portText =
      ports.count == 1 ? "\(ports.lowerBound)" : "\(ports.lowerBound)-\(ports.upperBound)"
    let permissions = Self.permissions(ports: ports, from: source)
    let rule =
      #"SecurityGroupRules[?IsEgress==`false` && IpProtocol=='tcp' && FromPort==`\#(ports.lowerBound)` && ToPort==`\#(ports.upperBound)`"#
    let match: Argument
    let origin: String
    switch source {
    case .cidr(let cidr):
      origin = cidr
      match = .text(rule + " && CidrIpv4=='\(cidr)'].SecurityGroupRuleId")
    case .group(let name, let export):
      origin = name
      match = "\(rule) && ReferencedGroupInfo.GroupId=='\(ref: export)'].SecurityGroupRuleId"
    }
    return Action(
      name: key, summary: "allow tcp \(portText) from \(origin) into \(target.name)",
      effect: .write,
      command: .aws(
        "ec2", "authorize-security-group-ingress", "--group-id", .ref(target.export),
        "--ip-permissions", permissions,
        "--query", "SecurityGroupRules[0].SecurityGroupRuleId", "--output", "text"),
      capture: Capture(export: nil, pattern: #"^sgr-[0-9a-f]+$"#),
      lookup: Lookup(
        .aws(
          "ec2", "describe-security-group-rules", "--filters",
          ec2Filters([], exports: [("group-id", target.export)]),
          "--query", match, "--output", "text")),
      alreadyDoneErrors: ["InvalidPermission.Duplicate"])
  }
}

extension SecurityGroupsStep {
  /// The exact `--ip-permissions` of one rule (authorize and revoke use the same document).
  static func permissions(ports: ClosedRange<Int>, from source: Source) -> Argument {
    let permission =
      #"[{"IpProtocol":"tcp","FromPort":\#(ports.lowerBound),"ToPort":\#(ports.upperBound),"#
    switch source {
    case .cidr(let cidr):
      return .text(permission + #""IpRanges":[{"CidrIp":"# + jsonString(cidr) + "}]}]")
    case .group(_, let export):
      return "\(permission)\"UserIdGroupPairs\":[{\"GroupId\":\"\(ref: export)\"}]}]"
    }
  }

  /// `ecs-self-ingress-8080-8083`: the rule that lets the services (and the function) reach each other.
  static func selfRuleKey(_ range: ClosedRange<Int>) -> String {
    "ecs-self-ingress-\(range.lowerBound)-\(range.upperBound)"
  }

  /// The rules this step added, each with its action's name, target group export and document.
  private func rules(_ deployment: Deployment) -> [(
    key: String, group: String, permissions: Argument
  )] {
    let groups = deployment.securityGroups
    let range = groups.ecsPortRange
    return groups.albPorts.map {
      ("alb-ingress-\($0)", "ALB_SG", Self.permissions(ports: $0...$0, from: .cidr("0.0.0.0/0")))
    } + [
      (
        "ecs-ingress-\(range.lowerBound)-\(range.upperBound)", "ECS_SG",
        Self.permissions(ports: range, from: .group(groups.alb.name, "ALB_SG"))
      ),
      (
        Self.selfRuleKey(range), "ECS_SG",
        Self.permissions(ports: range, from: .group(groups.ecs.name, "ECS_SG"))
      ),
      (
        "rds-ingress-\(groups.rdsPort)", "RDS_SG",
        Self.permissions(
          ports: groups.rdsPort...groups.rdsPort, from: .group(groups.ecs.name, "ECS_SG"))
      ),
    ]
  }

  // MARK: - Teardown (runbook destroy)

  /// The rules this step added are revoked (a group that stays, adopted or existing already, is
  /// left as it was found, and no group still points at another), then the groups are deleted,
  /// the RDS group first (it references the ECS group), the ALB group last. A group still used by
  /// a network interface (a load balancer or task being deleted) is retried while it goes away.
  package func teardown(for deployment: Deployment) -> [Action] {
    let groups = deployment.securityGroups
    let retry = dependencyRetry(deployment)
    var actions = rules(deployment).map { rule in
      Action(
        name: "revoke-\(rule.key)", summary: "revoke the rule \(rule.key) from \(rule.group)",
        effect: .write,
        command: .aws(
          "ec2", "revoke-security-group-ingress", "--group-id", .ref(rule.group),
          "--ip-permissions",
          rule.permissions),
        alreadyDoneErrors: ["InvalidPermission.NotFound", "InvalidGroup.NotFound"],
        deletes: rule.key)
    }
    let revokes = actions.map(\.name)
    var previous: [String] = []
    for (key, group, export) in [
      ("rds", groups.rds, "RDS_SG"), ("ecs", groups.ecs, "ECS_SG"), ("alb", groups.alb, "ALB_SG"),
    ] {
      actions.append(
        Action(
          name: "delete-\(key)-sg", summary: "delete security group \(group.name)", effect: .write,
          command: .aws("ec2", "delete-security-group", "--group-id", .ref(export)),
          alreadyDoneErrors: ["InvalidGroup.NotFound"], after: revokes + previous,
          transientErrors: retry,
          deletes: "\(key)-sg"))
      previous = ["delete-\(key)-sg"]
    }
    return actions
  }
}
