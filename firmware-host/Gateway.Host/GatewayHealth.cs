using System.Net;
using System.Net.Sockets;
using Gateway.Protocols;
using Gateway.Protocols.Mqtt;
using Gateway.Routing;
using Microsoft.Extensions.Options;

namespace Gateway.Host;

/// <summary>
/// Whether the gateway is actually working: the router routes, the data directory takes
/// writes, the MQTT adapter runs and its listener accepts connections. Backs /healthz and the
/// systemd watchdog, so a wedged process stops feeding the watchdog and gets restarted.
/// </summary>
public sealed class GatewayHealth(
    IMessageRouter router,
    MqttAdapter mqtt,
    GatewayEndpoints endpoints,
    IOptions<StorageOptions> storage,
    IOptions<MqttOptions> mqttOptions)
{
    private const string ProbeQueue = "gateway.health";
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(2);

    public async Task<HealthReport> CheckAsync(CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        CheckRouter(problems);
        CheckDataDirectory(problems);
        await CheckMqttAsync(problems, cancellationToken);
        return new HealthReport(problems);
    }

    private void CheckRouter(List<string> problems)
    {
        try
        {
            router.DeclareQueue(ProbeQueue, ProbeQueueOptions);
            var result = router.Publish(new GatewayMessage(string.Empty, ProbeQueue, ReadOnlyMemory<byte>.Empty));
            if (result.Status != RouteStatus.Routed)
            {
                problems.Add($"router: probe message was {result.Status}");
            }
        }
        catch (RoutingException ex)
        {
            problems.Add("router: " + ex.Message);
        }
    }

    private void CheckDataDirectory(List<string> problems)
    {
        if (DataDirectory.CheckWritable(storage.Value.DataDirectory) is { } problem)
        {
            problems.Add("storage: data directory " + problem);
        }
    }

    private async Task CheckMqttAsync(List<string> problems, CancellationToken cancellationToken)
    {
        if (!mqtt.Server.IsStarted)
        {
            problems.Add("mqtt: server not started");
            return;
        }

        if (!endpoints.Has("mqtt"))
        {
            return; // listener turned off in configuration
        }

        var address = IPAddress.Parse(mqttOptions.Value.BindAddress);
        if (address.Equals(IPAddress.Any))
        {
            address = IPAddress.Loopback;
        }
        else if (address.Equals(IPAddress.IPv6Any))
        {
            address = IPAddress.IPv6Loopback;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ConnectTimeout);
        try
        {
            using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(new IPEndPoint(address, endpoints.GetPort("mqtt")), timeout.Token);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            problems.Add($"mqtt: listener not accepting connections ({ex.Message})");
        }
    }

    private static readonly QueueOptions ProbeQueueOptions = new()
    {
        Arguments = new Dictionary<string, object?> { ["x-max-length"] = 0 },
    };
}

/// <summary>The outcome of one health check: healthy when nothing is wrong.</summary>
public sealed record HealthReport(IReadOnlyList<string> Problems)
{
    public bool Healthy => Problems.Count == 0;

    public override string ToString() => Healthy ? "healthy" : string.Join("; ", Problems);
}
