using System.Net;
using System.Net.Sockets;
using Gateway.Protocols;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Gateway.Host;

/// <summary>Every protocol listener the host opened accepts a TCP connection (a wedged accept loop shows here).</summary>
internal sealed class ListenerHealthCheck(GatewayEndpoints endpoints, ProtocolRegistry registry, IServiceProvider services) : IHealthCheck
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(2);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        List<string>? failing = null;
        foreach (var listener in registry.Listeners(services))
        {
            if (!endpoints.Has(listener.Name))
            {
                continue; // turned off in configuration
            }

            var address = listener.Address.Equals(IPAddress.Any) ? IPAddress.Loopback
                : listener.Address.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback
                : listener.Address;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(ConnectTimeout);
            try
            {
                using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(new IPEndPoint(address, endpoints.GetPort(listener.Name)), timeout.Token);
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                (failing ??= []).Add($"{listener.Name} not accepting connections ({ex.Message})");
            }
        }

        return failing is null ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy(string.Join(", ", failing));
    }
}
