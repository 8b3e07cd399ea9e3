import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess

/// Verify's look at service discovery: is each service's name registered where its callers look
/// it up? The Lambda function (and anything else in the VPC) resolves
/// `unisync-user-service.unisync.internal`, whose `A` records are the Cloud Map instances ECS
/// registers for the service's tasks; `discover-instances` asks Cloud Map for exactly those.
/// "DiscoverInstances": https://docs.aws.amazon.com/cloud-map/latest/api/API_DiscoverInstances.html
extension Verification {
  /// `discover-instances` of one service's name: its instances' ids and IPv4 addresses. Healthy
  /// ones, or all when none is healthy, as DNS answers (`HEALTHY_OR_ELSE_ALL`).
  static func discoverInstances(_ deployment: Deployment, _ service: String) -> Command {
    .aws(
      "servicediscovery", "discover-instances", "--namespace-name",
      .text(ServiceDiscovery.namespace(deployment)), "--service-name",
      .text(ServiceDiscovery.hostName(deployment, service)), "--health-status",
      "HEALTHY_OR_ELSE_ALL", "--query", "Instances[].Attributes.AWS_INSTANCE_IPV4", "--output",
      "text")
  }

  /// One line per service: its full name and the addresses it resolves to; a service whose name
  /// resolves to nothing is a problem (its callers cannot reach it).
  func discovery(verbose: Bool) async throws {
    let context = self.context
    let deployment = self.deployment
    let answers = await services.concurrentMap(limit: context.jobs) {
      service -> (String, Result<ProcessOutput, Error>) in
      do {
        return (
          service, .success(try await context.run(Self.discoverInstances(deployment, service)))
        )
      } catch { return (service, .failure(error)) }
    }
    for (service, answer) in answers {
      let name = ServiceDiscovery.fullName(deployment, service)
      let result = try answer.get()
      guard result.succeeded else {
        let code = awsErrorCode(in: result.stderrText) ?? "an error"
        problems.append("the name \(name) is registered nowhere (Cloud Map answers \(code))")
        continue
      }
      let addresses = result.stdoutText.split(whereSeparator: \.isWhitespace).filter {
        $0 != "None"
      }
      if addresses.isEmpty {
        problems.append("the name \(name) resolves to no task (nothing registered in Cloud Map)")
      } else if verbose {
        say(
          "name \(name): \(addresses.count) task(s) registered (\(addresses.joined(separator: " ")))"
        )
      }
    }
  }
}
