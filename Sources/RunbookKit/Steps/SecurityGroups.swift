import Foundation

/// Guide 2.2: the three security groups, chained so that only the ALB is open to the internet,
/// only the ALB reaches the ECS tasks, and only the ECS tasks reach the database.
public struct SecurityGroupsStep: Step {
  public let id = "security"
  public let section = "2.2"
  public let title = "Security groups"

  public init() {}

  public func actions(for deployment: Deployment) -> [Action] {
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

    // RDS security group: allow MySQL access from the ECS tasks.
    actions.append(group(deployment, key: "rds", groups.rds, export: "RDS_SG"))
    actions.append(
      ingress(
        deployment, key: "rds-ingress-\(groups.rdsPort)", into: (groups.rds.name, "RDS_SG"),
        ports: groups.rdsPort...groups.rdsPort, from: .group(groups.ecs.name, "ECS_SG")))
    return actions
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
  private enum Source {
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
    let permission =
      #"[{"IpProtocol":"tcp","FromPort":\#(ports.lowerBound),"ToPort":\#(ports.upperBound),"#
    let rule =
      #"SecurityGroupRules[?IsEgress==`false` && IpProtocol=='tcp' && FromPort==`\#(ports.lowerBound)` && ToPort==`\#(ports.upperBound)`"#
    let permissions: Argument
    let match: Argument
    let origin: String
    switch source {
    case .cidr(let cidr):
      origin = cidr
      permissions = .text(permission + #""IpRanges":[{"CidrIp":"# + jsonString(cidr) + "}]}]")
      match = .text(rule + " && CidrIpv4=='\(cidr)'].SecurityGroupRuleId")
    case .group(let name, let export):
      origin = name
      permissions = "\(permission)\"UserIdGroupPairs\":[{\"GroupId\":\"\(ref: export)\"}]}]"
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
