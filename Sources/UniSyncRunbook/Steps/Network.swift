import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// Guide 2.1: the VPC, four subnets, the internet gateway, the NAT gateway with its Elastic IP,
/// and the two route tables the guide forgot (without them nothing in the VPC reaches anything).
package struct NetworkStep: Step {
  package let id = "network"
  package let section = "2.1"
  package let title = "VPC and network"

  package init() {}

  package func actions(for deployment: Deployment) -> [Action] {
    let network = deployment.network
    var actions: [Action] = []

    // Create the VPC (with --adopt, an existing one of the same name and CIDR is used).
    actions.append(
      .create(
        "vpc", "create VPC \(network.vpcName) \(network.vpcCidr)", export: "VPC_ID",
        pattern: #"^vpc-[0-9a-f]+$"#,
        command: .aws(
          "ec2", "create-vpc", "--cidr-block", .text(network.vpcCidr),
          "--tag-specifications",
          deployment.tagSpecifications("vpc", name: network.vpcName, action: "network/vpc"),
          "--query", "Vpc.VpcId", "--output", "text"),
        lookup: .aws(
          "ec2", "describe-vpcs", "--filters", deployment.ownedFilters(action: "network/vpc"),
          "--query", "Vpcs[].VpcId", "--output", "text"),
        adoptLookup: .aws(
          "ec2", "describe-vpcs", "--filters",
          // `cidr` is DescribeVpcs' filter for the primary IPv4 block (it has no `cidr-block`).
          ec2Filters([("tag:Name", [network.vpcName]), ("cidr", [network.vpcCidr])]),
          "--query", "Vpcs[].VpcId", "--output", "text")
      ).observed(
        by: Observation(
          .aws(
            "ec2", "describe-vpcs", "--vpc-ids", .ref("VPC_ID"), "--query", "Vpcs[0].CidrBlock",
            "--output", "text"),
          expected: .text(network.vpcCidr), describes: "cidr",
          missingErrors: ["InvalidVpcID.NotFound"])))

    // What the guide forgot: DNS in the VPC. The private DNS namespace the services find each
    // other by (Support/ServiceDiscovery.swift) answers only in a VPC with both attributes on.
    actions.append(Self.vpcAttribute("enableDnsSupport", option: "--enable-dns-support"))
    actions.append(Self.vpcAttribute("enableDnsHostnames", option: "--enable-dns-hostnames"))

    // Public subnets (for the ALB), private subnets (for ECS and RDS).
    for subnet in network.subnets {
      let action = "network/subnet-\(subnet.id)"
      actions.append(
        .create(
          "subnet-\(subnet.id)", "create subnet \(subnet.name) \(subnet.cidr) in \(subnet.zone)",
          export: subnet.export, pattern: #"^subnet-[0-9a-f]+$"#,
          command: .aws(
            "ec2", "create-subnet", "--vpc-id", .ref("VPC_ID"), "--cidr-block", .text(subnet.cidr),
            "--availability-zone", .text(subnet.zone),
            "--tag-specifications",
            deployment.tagSpecifications("subnet", name: subnet.name, action: action),
            "--query", "Subnet.SubnetId", "--output", "text"),
          lookup: .aws(
            "ec2", "describe-subnets", "--filters", deployment.ownedFilters(action: action),
            "--query", "Subnets[].SubnetId", "--output", "text"),
          adoptLookup: .aws(
            "ec2", "describe-subnets", "--filters", inTheVPC("cidr-block", subnet.cidr),
            "--query", "Subnets[].SubnetId", "--output", "text")
        ).observed(
          by: Observation(
            .aws(
              "ec2", "describe-subnets", "--subnet-ids", .ref(subnet.export), "--query",
              "Subnets[0].[CidrBlock,AvailabilityZone]", "--output", "text"),
            expected: .text("\(subnet.cidr) \(subnet.zone)"), describes: "cidr and zone",
            missingErrors: ["InvalidSubnetID.NotFound"])))
    }

    // Create the internet gateway and attach it.
    actions.append(
      .create(
        "internet-gateway", "create internet gateway \(network.internetGatewayName)",
        export: "IGW_ID",
        pattern: #"^igw-[0-9a-f]+$"#,
        command: .aws(
          "ec2", "create-internet-gateway",
          "--tag-specifications",
          deployment.tagSpecifications(
            "internet-gateway", name: network.internetGatewayName,
            action: "network/internet-gateway"),
          "--query", "InternetGateway.InternetGatewayId", "--output", "text"),
        lookup: .aws(
          "ec2", "describe-internet-gateways", "--filters",
          deployment.ownedFilters(action: "network/internet-gateway"),
          "--query", "InternetGateways[].InternetGatewayId", "--output", "text"),
        adoptLookup: .aws(
          "ec2", "describe-internet-gateways", "--filters",
          ec2Filters([("tag:Name", [network.internetGatewayName])]),
          "--query", "InternetGateways[].InternetGatewayId", "--output", "text")))
    actions.append(
      Action(
        name: "attach-internet-gateway",
        summary: "attach \(network.internetGatewayName) to the VPC",
        effect: .write,
        command: .aws(
          "ec2", "attach-internet-gateway", "--vpc-id", .ref("VPC_ID"), "--internet-gateway-id",
          .ref("IGW_ID")),
        lookup: Lookup(
          .aws(
            "ec2", "describe-internet-gateways", "--internet-gateway-ids", .ref("IGW_ID"),
            "--query", "InternetGateways[0].Attachments[?VpcId=='\(ref: "VPC_ID")'].State",
            "--output", "text"),
          pattern: "^(available|attached|attaching)$"),
        alreadyDoneErrors: ["Resource.AlreadyAssociated"]))

    // NAT gateway (outbound traffic for the private subnets): an Elastic IP, then the gateway.
    actions.append(
      .create(
        "elastic-ip", "allocate Elastic IP \(network.elasticIpName) for the NAT gateway",
        export: "EIP_ID",
        pattern: #"^eipalloc-[0-9a-f]+$"#,
        command: .aws(
          "ec2", "allocate-address", "--domain", "vpc",
          "--tag-specifications",
          deployment.tagSpecifications(
            "elastic-ip", name: network.elasticIpName, action: "network/elastic-ip"),
          "--query", "AllocationId", "--output", "text"),
        lookup: .aws(
          "ec2", "describe-addresses", "--filters",
          deployment.ownedFilters(action: "network/elastic-ip"),
          "--query", "Addresses[].AllocationId", "--output", "text")))
    let natSubnet = network.subnets.first { $0.id == network.natSubnet }?.export ?? "SUBNET_PUBLIC"
    let liveNat = [("state", ["pending", "available"])]
    actions.append(
      .create(
        "nat-gateway", "create NAT gateway \(network.natGatewayName) in \(network.natSubnet)",
        export: "NAT_ID",
        pattern: #"^nat-[0-9a-f]+$"#,
        command: .aws(
          "ec2", "create-nat-gateway", "--subnet-id", .ref(natSubnet), "--allocation-id",
          .ref("EIP_ID"),
          // Unique to this creation, stable across a resume of it: EC2 remembers a token with its
          // parameters ("Ensuring idempotency" in the EC2 API reference), so after destroy a new
          // gateway (on a new Elastic IP) needs a new token, or IdempotentParameterMismatch.
          "--client-token", "runbook-nat-\(ref: "EIP_ID")",
          "--tag-specifications",
          deployment.tagSpecifications(
            "natgateway", name: network.natGatewayName, action: "network/nat-gateway"),
          "--query", "NatGateway.NatGatewayId", "--output", "text"),
        lookup: .aws(
          "ec2", "describe-nat-gateways", "--filter",
          deployment.ownedFilters(action: "network/nat-gateway", liveNat),
          "--query", "NatGateways[].NatGatewayId", "--output", "text"),
        adoptLookup: .aws(
          "ec2", "describe-nat-gateways", "--filter",
          ec2Filters([("tag:Name", [network.natGatewayName])] + liveNat),
          "--query", "NatGateways[].NatGatewayId", "--output", "text")))
    actions.append(
      .waitUntil(
        "nat-gateway-available", "wait until the NAT gateway is available",
        command: .aws(
          "ec2", "describe-nat-gateways", "--nat-gateway-ids", .ref("NAT_ID"),
          "--query", "NatGateways[0].State", "--output", "text"),
        success: ["available"], failure: ["failed", "deleting", "deleted"],
        timeoutSeconds: Double(network.natWaitTimeoutSeconds), after: ["nat-gateway"]))

    // What the guide forgot: route tables. Public: 0.0.0.0/0 to the internet gateway.
    actions += routeTable(
      deployment, key: "public", name: network.publicRouteTableName, export: "PUBLIC_RT_ID",
      target: ("--gateway-id", "IGW_ID"), after: "attach-internet-gateway",
      subnets: network.subnets.filter(\.isPublic))
    // Private: 0.0.0.0/0 to the NAT gateway, once it is available.
    actions += routeTable(
      deployment, key: "private", name: network.privateRouteTableName, export: "PRIVATE_RT_ID",
      target: ("--nat-gateway-id", "NAT_ID"), after: "nat-gateway-available",
      subnets: network.subnets.filter { !$0.isPublic })
    return deployment.observing(actions, step: id)
  }

  /// `modify-vpc-attribute` turning one attribute on (EC2 takes one attribute per call), skipped
  /// when `describe-vpc-attribute` says it is on already (an adopted VPC, a resumed run).
  /// "DNS attributes for your VPC": https://docs.aws.amazon.com/vpc/latest/userguide/AmazonDNS-concepts.html
  static func vpcAttribute(_ attribute: String, option: String) -> Action {
    let key = attribute.prefix(1).uppercased() + attribute.dropFirst()
    return Action(
      name: "vpc-\(option.dropFirst(2))", summary: "turn \(attribute) on in the VPC",
      effect: .write,
      command: .aws(
        "ec2", "modify-vpc-attribute", "--vpc-id", .ref("VPC_ID"), .text(option), #"{"Value":true}"#
      ),
      precheck: Precheck(
        .aws(
          "ec2", "describe-vpc-attribute", "--vpc-id", .ref("VPC_ID"), "--attribute",
          .text(attribute), "--query", .text("\(key).Value"), "--output", "text"),
        rule: "\(attribute) is on in the VPC"
      ) { output, _ in
        output.trimmingCharacters(in: .whitespacesAndNewlines).lowercased() == "true" ? "true" : nil
      })
  }

  /// EC2 `--filters` for what an adopted resource must be: in the VPC (`VPC_ID`), and with
  /// `value` for the filter `name`.
  private func inTheVPC(_ name: String, _ value: String) -> Argument {
    Argument([
      .text(#"[{"Name":"vpc-id","Values":[""#), .export("VPC_ID"),
      .text(#""]},{"Name":"# + jsonString(name) + #","Values":["# + jsonString(value) + "]}]"),
    ])
  }

  /// A route table, its default route and its subnet associations.
  private func routeTable(
    _ deployment: Deployment, key: String, name: String, export: String,
    target: (option: String, export: String), after: String, subnets: [Deployment.Subnet]
  ) -> [Action] {
    let action = "network/\(key)-route-table"
    var actions: [Action] = [
      .create(
        "\(key)-route-table", "create \(key) route table \(name)", export: export,
        pattern: #"^rtb-[0-9a-f]+$"#,
        command: .aws(
          "ec2", "create-route-table", "--vpc-id", .ref("VPC_ID"),
          "--tag-specifications",
          deployment.tagSpecifications("route-table", name: name, action: action),
          "--query", "RouteTable.RouteTableId", "--output", "text"),
        lookup: .aws(
          "ec2", "describe-route-tables", "--filters", deployment.ownedFilters(action: action),
          "--query", "RouteTables[].RouteTableId", "--output", "text"),
        adoptLookup: .aws(
          "ec2", "describe-route-tables", "--filters", inTheVPC("tag:Name", name),
          "--query", "RouteTables[].RouteTableId", "--output", "text")),
      Action(
        name: "\(key)-default-route", summary: "route 0.0.0.0/0 of \(name) to \(target.export)",
        effect: .write,
        command: .aws(
          "ec2", "create-route", "--route-table-id", .ref(export), "--destination-cidr-block",
          "0.0.0.0/0",
          .text(target.option), .ref(target.export)),
        lookup: Lookup(
          .aws(
            "ec2", "describe-route-tables", "--route-table-ids", .ref(export),
            "--query",
            "RouteTables[0].Routes[?DestinationCidrBlock=='0.0.0.0/0'].[GatewayId,NatGatewayId][]",
            "--output", "text"),
          pattern: #"^(igw|nat)-[0-9a-f]+$"#),
        alreadyDoneErrors: ["RouteAlreadyExists"], after: [after]),
    ]
    for subnet in subnets {
      actions.append(
        Action(
          name: "associate-\(subnet.id)", summary: "associate \(subnet.name) with \(name)",
          effect: .write,
          command: .aws(
            "ec2", "associate-route-table", "--route-table-id", .ref(export), "--subnet-id",
            .ref(subnet.export),
            "--query", "AssociationId", "--output", "text"),
          capture: Capture(export: nil, pattern: #"^rtbassoc-[0-9a-f]+$"#),
          lookup: Lookup(
            .aws(
              "ec2", "describe-route-tables", "--route-table-ids", .ref(export),
              "--query",
              "RouteTables[0].Associations[?SubnetId=='\(ref: subnet.export)'].RouteTableAssociationId",
              "--output", "text")),
          alreadyDoneErrors: ["Resource.AlreadyAssociated"]))
    }
    return actions
  }
}

// MARK: - Teardown (runbook destroy)

extension NetworkStep {
  /// The network deleted in reverse: the NAT gateway (waited for until deleted, so its Elastic IP
  /// can be released), the route tables with their associations, the internet gateway detached
  /// and deleted, the subnets, the VPC. Whatever still holds a network interface in a subnet (a
  /// load balancer, a Lambda function's interfaces) makes AWS answer `DependencyViolation` for a
  /// while: those deletes are retried for `operations.dependencyRetrySeconds`.
  package func teardown(for deployment: Deployment) -> [Action] {
    let network = deployment.network
    let retry = dependencyRetry(deployment)
    var actions: [Action] = [
      Action(
        name: "delete-nat-gateway", summary: "delete NAT gateway \(network.natGatewayName)",
        effect: .write,
        command: .aws("ec2", "delete-nat-gateway", "--nat-gateway-id", .ref("NAT_ID")),
        alreadyDoneErrors: ["NatGatewayNotFound", "InvalidNatGatewayID.NotFound"],
        deletes: "nat-gateway"),
      // A deleted gateway stays listed as `deleted` for a while, then disappears (None).
      Action(
        name: "nat-gateway-deleted", summary: "wait until the NAT gateway is deleted",
        effect: .read,
        command: .aws(
          "ec2", "describe-nat-gateways", "--filter",
          ec2Filters([], exports: [("nat-gateway-id", "NAT_ID")]),
          "--query", "NatGateways[0].State", "--output", "text"),
        wait: Wait(
          .aws(
            "ec2", "describe-nat-gateways", "--filter",
            ec2Filters([], exports: [("nat-gateway-id", "NAT_ID")]),
            "--query", "NatGateways[0].State", "--output", "text"),
          until: ["deleted", "None"], failOn: ["failed"],
          timeoutSeconds: Double(network.natWaitTimeoutSeconds)),
        after: ["delete-nat-gateway"], deletes: "nat-gateway"),
      Action(
        name: "release-elastic-ip", summary: "release Elastic IP \(network.elasticIpName)",
        effect: .write,
        command: .aws("ec2", "release-address", "--allocation-id", .ref("EIP_ID")),
        alreadyDoneErrors: ["InvalidAllocationID.NotFound"], after: ["nat-gateway-deleted"],
        transientErrors: retry, deletes: "elastic-ip"),
    ]
    for (key, name) in [
      ("public", network.publicRouteTableName), ("private", network.privateRouteTableName),
    ] {
      actions.append(
        deleteRouteTable(
          key: key, name: name, export: key == "public" ? "PUBLIC_RT_ID" : "PRIVATE_RT_ID"))
    }
    actions += [
      Action(
        name: "detach-internet-gateway",
        summary: "detach \(network.internetGatewayName) from the VPC", effect: .write,
        command: .aws(
          "ec2", "detach-internet-gateway", "--internet-gateway-id", .ref("IGW_ID"), "--vpc-id",
          .ref("VPC_ID")),
        alreadyDoneErrors: ["Gateway.NotAttached", "InvalidInternetGatewayID.NotFound"],
        after: ["release-elastic-ip", "delete-public-route-table"], transientErrors: retry,
        deletes: "attach-internet-gateway"),
      Action(
        name: "delete-internet-gateway",
        summary: "delete internet gateway \(network.internetGatewayName)",
        effect: .write,
        command: .aws("ec2", "delete-internet-gateway", "--internet-gateway-id", .ref("IGW_ID")),
        alreadyDoneErrors: ["InvalidInternetGatewayID.NotFound"],
        after: ["detach-internet-gateway"],
        transientErrors: retry, deletes: "internet-gateway"),
    ]
    for subnet in network.subnets {
      actions.append(
        Action(
          name: "delete-subnet-\(subnet.id)", summary: "delete subnet \(subnet.name)",
          effect: .write,
          command: .aws("ec2", "delete-subnet", "--subnet-id", .ref(subnet.export)),
          alreadyDoneErrors: ["InvalidSubnetID.NotFound"],
          after: [
            "nat-gateway-deleted", "delete-public-route-table", "delete-private-route-table",
          ],
          transientErrors: retry, deletes: "subnet-\(subnet.id)"))
    }
    actions.append(
      Action(
        name: "delete-vpc", summary: "delete VPC \(network.vpcName)", effect: .write,
        command: .aws("ec2", "delete-vpc", "--vpc-id", .ref("VPC_ID")),
        alreadyDoneErrors: ["InvalidVpcID.NotFound"],
        after: network.subnets.map { "delete-subnet-\($0.id)" } + ["delete-internet-gateway"],
        transientErrors: retry, deletes: "vpc"))
    return actions
  }

  /// Disassociates a route table from its subnets, then deletes it (its routes go with it).
  private func deleteRouteTable(key: String, name: String, export: String) -> Action {
    let describe = Command.aws(
      "ec2", "describe-route-tables", "--route-table-ids", .ref(export),
      "--query", "RouteTables[0].Associations[?Main!=`true`].RouteTableAssociationId", "--output",
      "text")
    let disassociate = Command.aws(
      "ec2", "disassociate-route-table", "--association-id", .ref("ASSOCIATION_ID"))
    let delete = Command.aws("ec2", "delete-route-table", "--route-table-id", .ref(export))
    let procedure = Procedure(
      "delete route table \(name)",
      outline: [.command(describe), .command(disassociate), .command(delete)],
      requires: [export]
    ) { context in
      let found = try await context.run(describe)
      if !found.succeeded, awsErrorCode(in: found.stderrText) == "InvalidRouteTableID.NotFound" {
        return "gone"
      }
      guard found.succeeded else { throw context.failure(of: describe, found) }
      for association in found.stdoutText.split(whereSeparator: \.isWhitespace)
      where association != "None" {
        let command = Command.aws(
          "ec2", "disassociate-route-table", "--association-id", .text(String(association)))
        let result = try await context.run(command)
        if !result.succeeded, awsErrorCode(in: result.stderrText) != "InvalidAssociationID.NotFound"
        {
          throw context.failure(of: command, result)
        }
      }
      let deleted = try await context.run(delete)
      if !deleted.succeeded, awsErrorCode(in: deleted.stderrText) != "InvalidRouteTableID.NotFound"
      {
        throw context.failure(of: delete, deleted)
      }
      return nil
    }
    return Action(
      name: "delete-\(key)-route-table", summary: "disassociate and delete route table \(name)",
      effect: .write,
      command: delete, procedure: procedure, deletes: "\(key)-route-table")
  }
}
