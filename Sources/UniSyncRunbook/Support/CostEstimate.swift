import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// A monthly cost estimate of what steps create, from the price table in `runbooks/prices.json`.
package struct CostEstimate {
  package struct Prices: Decodable {
    package var region: String
    var date: String
    var currency: String
    var note: String
    var hoursPerMonth: Double
    var natGatewayHour: Double
    var publicIPv4Hour: Double
    var loadBalancerHour: Double
    var loadBalancerCapacityUnitHour: Double
    var databaseInstanceHour: [String: Double]
    var databaseStorageGBMonth: Double
    var fargateVCPUHour: Double
    var fargateGBHour: Double
    var fargateSpotSavings: Double
    var secretMonth: Double
  }

  package struct Line {
    var item: String
    var monthly: Double
  }

  var prices: Prices
  var lines: [Line] = []
  var tips: [String] = []

  /// Loads `prices.json` from the configuration's folder; nil when there is none.
  package static func load(for deployment: Deployment) -> Prices? {
    let path = deployment.baseDirectory + "/prices.json"
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    return try? JSONDecoder().decode(Prices.self, from: data)
  }

  package init(prices: Prices, deployment: Deployment, steps: [String]) {
    self.prices = prices
    let hours = prices.hoursPerMonth
    if steps.contains("network") {
      lines.append(
        Line(item: "NAT gateway (1, hourly charge)", monthly: prices.natGatewayHour * hours))
      lines.append(
        Line(item: "Elastic IP (public IPv4 address)", monthly: prices.publicIPv4Hour * hours))
    }
    if steps.contains("rds") {
      let rds = deployment.rds
      let copies = rds.multiAZ ? 2.0 : 1.0
      if let hourly = prices.databaseInstanceHour[rds.instanceClass] {
        lines.append(
          Line(
            item: "RDS \(rds.instanceClass)\(rds.multiAZ ? " Multi-AZ" : "")",
            monthly: hourly * copies * hours))
      }
      lines.append(
        Line(
          item: "RDS storage \(rds.allocatedStorageGB) GB\(rds.multiAZ ? " x2 (Multi-AZ)" : "")",
          monthly: Double(rds.allocatedStorageGB) * prices.databaseStorageGBMonth * copies))
      lines.append(Line(item: "RDS-managed master password secret", monthly: prices.secretMonth))
    }
    if steps.contains("secrets") {
      lines.append(Line(item: "Secrets Manager secrets (3)", monthly: 3 * prices.secretMonth))
    }
    var fargate = 0.0
    if steps.contains("ecs") {
      lines.append(
        Line(
          item: "Application Load Balancer (1 capacity unit)",
          monthly: (prices.loadBalancerHour + prices.loadBalancerCapacityUnitHour) * hours))
      let vcpu = (Double(deployment.ecs.cpu) ?? 256) / 1024
      let memory = (Double(deployment.ecs.memory) ?? 512) / 1024
      let tasks = Double(deployment.services.count * deployment.ecs.desiredCount)
      fargate = tasks * (vcpu * prices.fargateVCPUHour + memory * prices.fargateGBHour) * hours
      lines.append(
        Line(
          item:
            "Fargate: \(deployment.services.count) services x \(deployment.ecs.desiredCount) tasks at \(vcpu) vCPU / \(memory) GB",
          monthly: fargate))
    }
    if fargate > 0 {
      tips.append(
        String(
          format:
            "Fargate Spot for development and staging: about %.2f %@ a month less (up to %d%%)",
          fargate * prices.fargateSpotSavings, prices.currency, Int(prices.fargateSpotSavings * 100)
        ))
    }
    if steps.contains("network") {
      tips.append(
        "one NAT gateway for both zones (as configured) instead of one per zone saves "
          + String(
            format: "%.2f %@ a month per zone", prices.natGatewayHour * hours, prices.currency)
          + "; VPC endpoints for ECR, S3, SQS and Secrets Manager cut NAT data processing")
    }
    if steps.contains("ecs") {
      tips.append(
        "CloudWatch Logs retention of 3 days instead of 7 in development (ecs.logRetentionDays) halves stored log volume"
      )
    }
  }

  var total: Double { lines.reduce(0) { $0 + $1.monthly } }

  package func render() -> String {
    guard !lines.isEmpty else { return "" }
    var text =
      "\nestimated monthly cost (\(prices.region), prices of \(prices.date), \(prices.currency)):\n"
    for line in lines {
      text +=
        "  " + line.item.padding(toLength: 58, withPad: " ", startingAt: 0)
        + String(format: "%9.2f\n", line.monthly)
    }
    text +=
      "  " + "total".padding(toLength: 58, withPad: " ", startingAt: 0)
      + String(format: "%9.2f\n", total)
    text += "  (\(prices.note))\n"
    if !tips.isEmpty {
      text += "savings:\n" + tips.map { "  - \($0)\n" }.joined()
    }
    return text
  }
}
