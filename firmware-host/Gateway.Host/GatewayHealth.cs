using System.Net;
using System.Net.Sockets;
using Gateway.Protocols;
using Gateway.Protocols.Mqtt;
using Gateway.Routing;
using Gateway.Storage;
using Microsoft.Extensions.Options;

namespace Gateway.Host;

/// <summary>
/// Whether the gateway is actually working: the router routes, the data directory takes
/// writes, the MQTT adapter runs and its listener accepts connections. Backs /healthz and the
/// systemd watchdog, so a wedged process stops feeding the watchdog and gets restarted. Also
/// reports what a restart would not cure (alerts): free disk under the reserve, the store failing
/// to write, retained messages that could not be loaded. They make /healthz answer 503 but keep
/// the watchdog fed.
/// </summary>
public sealed class GatewayHealth(
    IMessageRouter router,
    MqttAdapter mqtt,
    GatewayEndpoints endpoints,
    IOptions<StorageOptions> storage,
    IOptions<MqttOptions> mqttOptions,
    LiteDbMessageStore store)
{
    private const string ProbeQueue = "gateway.health";
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(2);

    public async Task<HealthReport> CheckAsync(CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        CheckRouter(problems);
        CheckDataDirectory(problems);
        await CheckMqttAsync(problems, cancellationToken);
        return new HealthReport(problems, CheckAlerts());
    }

    private List<string> CheckAlerts()
    {
        var alerts = new List<string>();
        if (store.LowOnDisk)
        {
            alerts.Add($"storage: free disk under the Storage:MinFreeMegabytes reserve ({storage.Value.MinFreeMegabytes} MB); messages for durable queues are refused");
        }

        if (store.WriteFailure is { } failure)
        {
            alerts.Add("storage: writes are failing: " + failure);
        }

        if (mqtt.RetainedLoadFailure is { } retained)
        {
            alerts.Add("mqtt: retained messages not loaded: " + retained);
        }

        return alerts;
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

/// <summary>
/// The outcome of one health check: healthy when nothing is wrong. <paramref name="Problems"/>
/// mean the process does not work (a restart may help); <paramref name="Alerts"/> are conditions
/// it works through, that need an operator (a full disk).
/// </summary>
public sealed record HealthReport(IReadOnlyList<string> Problems, IReadOnlyList<string> Alerts)
{
    public bool Healthy => Problems.Count == 0 && Alerts.Count == 0;

    /// <summary>No problems (alerts aside): the systemd watchdog is fed.</summary>
    public bool Working => Problems.Count == 0;

    public override string ToString() => Healthy ? "healthy" : string.Join("; ", Problems.Concat(Alerts));
}
