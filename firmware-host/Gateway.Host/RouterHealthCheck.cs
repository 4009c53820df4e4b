using Gateway.Routing;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Gateway.Host;

/// <summary>The router routes: a probe message reaches a probe queue (which keeps nothing).</summary>
internal sealed class RouterHealthCheck(IMessageRouter router) : IHealthCheck
{
    private const string ProbeQueue = "gateway.health";

    private static readonly QueueOptions ProbeQueueOptions = new()
    {
        Arguments = new Dictionary<string, object?> { ["x-max-length"] = 0 },
    };

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            router.DeclareQueue(ProbeQueue, ProbeQueueOptions);
            var result = router.Publish(new GatewayMessage(string.Empty, ProbeQueue, ReadOnlyMemory<byte>.Empty));
            return Task.FromResult(result.Status == RouteStatus.Routed
                ? HealthCheckResult.Healthy()
                : HealthCheckResult.Unhealthy($"probe message was {result.Status}"));
        }
        catch (RoutingException ex)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy(ex.Message));
        }
    }
}
