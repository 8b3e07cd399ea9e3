import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// Guide 6.4: the Application Load Balancer, its target group and its listener (part of the ecs
/// step, ``ECSStep``).
extension ECSStep {
  // MARK: - 6.4 Load balancer

  func loadBalancer(_ deployment: Deployment) -> [Action] {
    let ecs = deployment.ecs
    let publicSubnets = deployment.network.subnets.filter(\.isPublic).map {
      Argument.ref($0.export)
    }
    let gateway = deployment.services.first(where: \.loadBalanced) ?? deployment.services.first
    let elb = "elasticloadbalancing"
    let albPattern = arnPattern(
      elb, "loadbalancer/app/", name: ecs.loadBalancer, suffix: "/[0-9a-f]+")
    let tgPattern = arnPattern(elb, "targetgroup/", name: ecs.targetGroup, suffix: "/[0-9a-f]+")
    let listenerPattern = arnPattern(
      elb, "listener/app/", name: ecs.loadBalancer, suffix: "/[0-9a-f]+/[0-9a-f]+")
    let balancer = NamedByELB(
      describe: "describe-load-balancers", list: "LoadBalancers", nameKey: "LoadBalancerName",
      arnKey: "LoadBalancerArn", name: ecs.loadBalancer)
    let group = NamedByELB(
      describe: "describe-target-groups", list: "TargetGroups", nameKey: "TargetGroupName",
      arnKey: "TargetGroupArn", name: ecs.targetGroup)
    let port =
      deployment.securityGroups.albPorts.contains(80)
      ? 80 : deployment.securityGroups.albPorts.first ?? 80

    // The emulator creates a second ALB of the same name, and a second listener on the same port:
    // each is looked up first, and created only when there is none. In a VPC this run created a
    // moment ago there is nothing to look up: an ALB or target group of the same name elsewhere
    // could not serve it, and AWS refuses the create (DuplicateLoadBalancerName).
    let newVPC = Settlement.nothingToFind(whenCreated: "vpc", inStep: "network")
    return [
      Action(
        name: "load-balancer", summary: "create ALB \(ecs.loadBalancer) in the public subnets",
        effect: .write,
        command: .aws(
          ["elbv2", "create-load-balancer", "--name", .text(ecs.loadBalancer), "--subnets"]
            + publicSubnets
            + [
              "--security-groups", .ref("ALB_SG"), "--scheme", "internet-facing", "--type",
              "application",
              "--tags", deployment.tagList(name: ecs.loadBalancer, action: "\(id)/load-balancer"),
              "--query", "LoadBalancers[0].LoadBalancerArn", "--output", "text",
            ]),
        capture: Capture(export: "ALB_ARN", pattern: albPattern),
        // After an interrupted create, the ALB of that name is what that run made.
        lookup: balancer.lookup,
        // --adopt: one of that name in this deployment's VPC, used as it is (destroy leaves it).
        adoptLookup: balancer.adoptLookup,
        // A name is no owner: the lineage tag says whether it is this deployment's (`runbook
        // reset ecs` forgot it); another one stops the step.
        precheck: balancer.precheck(
          rule: "an ALB named \(ecs.loadBalancer) exists", pattern: albPattern,
          refusal:
            "ALB '\(ecs.loadBalancer)' exists already, and this deployment did not create it (CreateLoadBalancer would hand it over as if it were new, and its port \(port) listener would be pointed at this deployment's target group): "
            + "pass --adopt to use it as it is when it is in this deployment's VPC (destroy then leaves it), or set ecs.loadBalancer to another name"
        ),
        settledBy: newVPC),
      // The guide never waits; an ALB takes a few minutes to become active. The poll asks for
      // the DNS name too: the last one answers the read after it without another call.
      // `active_impaired` routes traffic too, short of what it needs to scale
      // (LoadBalancerState in the ELB API reference): ready, and verify reports it.
      .waitUntil(
        "load-balancer-active", "wait until \(ecs.loadBalancer) is active",
        command: describeLoadBalancer,
        success: ["active", "active_impaired"], failure: ["failed"], timeoutSeconds: 900,
        intervalSeconds: 10),
      Action(
        name: "load-balancer-dns", summary: "read the DNS name of \(ecs.loadBalancer)",
        effect: .read,
        command: describeLoadBalancer,
        capture: Capture(
          export: "ALB_DNS", pattern: #"^[A-Za-z0-9.-]+$"#, extract: #"^\S+\s+(\S+)"#),
        after: ["load-balancer-active"]),
      Action(
        name: "target-group",
        summary:
          "create target group \(ecs.targetGroup) (HTTP \(gateway?.port ?? 8080), ip targets, \(ecs.healthCheckPath))",
        effect: .write,
        command: .aws(
          "elbv2", "create-target-group", "--name", .text(ecs.targetGroup), "--protocol", "HTTP",
          "--port", "\(gateway?.port ?? 8080)", "--vpc-id", .ref("VPC_ID"), "--target-type", "ip",
          "--health-check-path", .text(ecs.healthCheckPath),
          "--health-check-interval-seconds", "\(ecs.healthCheck.intervalSeconds)",
          "--health-check-timeout-seconds", "\(ecs.healthCheck.timeoutSeconds)",
          "--healthy-threshold-count", "\(ecs.healthCheck.healthyThresholdCount)",
          "--unhealthy-threshold-count", "\(ecs.healthCheck.unhealthyThresholdCount)",
          "--tags", deployment.tagList(name: ecs.targetGroup, action: "\(id)/target-group"),
          "--query", "TargetGroups[0].TargetGroupArn", "--output", "text"),
        capture: Capture(export: "TG_ARN", pattern: tgPattern),
        lookup: group.lookup,
        adoptLookup: group.adoptLookup,
        // Another team's target group would get this deployment's tasks registered into it (and
        // its listener's traffic sent to them): only one with the lineage tag is ours.
        precheck: group.precheck(
          rule: "a target group named \(ecs.targetGroup) exists", pattern: tgPattern,
          refusal:
            "target group '\(ecs.targetGroup)' exists already, and this deployment did not create it (the services would register their tasks into it, beside whatever it serves): "
            + "pass --adopt to take it over when it is in this deployment's VPC (its deregistration delay then becomes ecs.deregistrationDelaySeconds; destroy leaves it), or set ecs.targetGroup to another name"
        ),
        settledBy: newVPC),
      Action(
        name: "target-group-attributes",
        summary: "deregistration delay of \(ecs.targetGroup): \(ecs.deregistrationDelaySeconds) s",
        effect: .write,
        command: .aws(
          "elbv2", "modify-target-group-attributes", "--target-group-arn", .ref("TG_ARN"),
          "--attributes",
          .text(
            #"[{"Key":"deregistration_delay.timeout_seconds","Value":"\#(ecs.deregistrationDelaySeconds)"}]"#
          )),
        lookup: Lookup(
          .aws(
            "elbv2", "describe-target-group-attributes", "--target-group-arn", .ref("TG_ARN"),
            "--query",
            "Attributes[?Key=='deregistration_delay.timeout_seconds' && Value=='\(ecs.deregistrationDelaySeconds)'].Value",
            "--output", "text"),
          pattern: exactPattern("\(ecs.deregistrationDelaySeconds)"))
      ).configuring("target-group"),
      Action(
        name: "listener", summary: "create the HTTP \(port) listener of \(ecs.loadBalancer)",
        effect: .write,
        command: .aws(
          "elbv2", "create-listener", "--load-balancer-arn", .ref("ALB_ARN"), "--protocol", "HTTP",
          "--port", "\(port)", "--default-actions",
          #"[{"Type":"forward","TargetGroupArn":"\#(ref: "TG_ARN")"}]"#,
          "--tags",
          deployment.tagList(name: "\(ecs.loadBalancer)-http-\(port)", action: "\(id)/listener"),
          "--query", "Listeners[0].ListenerArn", "--output", "text"),
        capture: Capture(export: "LISTENER_ARN", pattern: listenerPattern),
        precheck: .exists(
          .aws(
            "elbv2", "describe-listeners", "--load-balancer-arn", .ref("ALB_ARN"),
            "--query", "Listeners[?Port==`\(port)`].ListenerArn", "--output", "text"),
          rule: "\(ecs.loadBalancer) has a listener on port \(port)", pattern: listenerPattern),
        settledBy: .nothingToFind(whenCreated: "load-balancer")),
      // An existing listener (found above) may forward elsewhere: point it at the target group.
      Action(
        name: "listener-forward",
        summary: "forward the port \(port) listener to \(ecs.targetGroup)",
        effect: .write,
        command: .aws(
          "elbv2", "modify-listener", "--listener-arn", .ref("LISTENER_ARN"),
          "--default-actions", #"[{"Type":"forward","TargetGroupArn":"\#(ref: "TG_ARN")"}]"#,
          "--query", "Listeners[0].ListenerArn", "--output", "text"),
        capture: Capture(export: nil, pattern: listenerPattern),
        precheck: Precheck(
          .aws(
            "elbv2", "describe-listeners", "--listener-arns", .ref("LISTENER_ARN"),
            "--query", "Listeners[0].[ListenerArn,DefaultActions[0].TargetGroupArn]", "--output",
            "text"),
          rule: "the listener forwards to \(ecs.targetGroup)"
        ) { output, values in
          let words = output.split(whereSeparator: \.isWhitespace).map(String.init)
          return words.count == 2 && words[1] == values["TG_ARN"] ? words[0] : nil
        },
        settledBy: .nothingToDo(whenCreated: "listener")),
    ]
  }

  /// The state and the DNS name of the ALB.
  private var describeLoadBalancer: Command {
    .aws(
      "elbv2", "describe-load-balancers", "--load-balancer-arns", .ref("ALB_ARN"),
      "--query", "LoadBalancers[0].[State.Code,DNSName]", "--output", "text")
  }
}

/// An ALB or a target group, found by the configuration's name: after an interrupted create (its
/// lookup), in the deployment's VPC for `--adopt`, and before the create, where its lineage tag
/// says whether it is this deployment's.
private struct NamedByELB {
  var describe: String
  var list: String
  var nameKey: String
  var arnKey: String
  var name: String

  var lookup: Lookup { Lookup(find()) }
  var adoptLookup: Lookup { Lookup(find(" && VpcId=='\(ref: "VPC_ID")'")) }

  /// Found by name; owned only with the lineage tag, else `refusal` stops the step.
  func precheck(rule: String, pattern: String, refusal: String) -> Precheck {
    .exists(
      find(), rule: rule, pattern: pattern,
      ownership: Precheck.Ownership(
        .aws(
          "elbv2", "describe-tags", "--resource-arns", .ref(Precheck.found), "--query",
          "TagDescriptions[0].Tags[?Key=='\(OwnershipTag.lineage)'].Value", "--output", "text"),
        refusal: refusal
      ) { output, values in
        output.trimmingCharacters(in: .whitespacesAndNewlines) == values[ContextValue.lineage]
      })
  }

  /// The ARN of the one of this name (`condition` narrows the filter further).
  private func find(_ condition: Argument = "") -> Command {
    .aws(
      "elbv2", .text(describe), "--query",
      Argument(
        [.text("\(list)[?\(nameKey)=='\(name)'")] + condition.fragments
          + [.text("].\(arnKey)")]), "--output", "text")
  }
}
