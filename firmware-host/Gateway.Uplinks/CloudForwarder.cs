using Gateway.Mqtt;
using Gateway.Routing;
using Microsoft.Extensions.Logging;

namespace Gateway.Uplinks;

/// <summary>
/// The protocol-neutral half of an uplink (ARCHITECTURE.md, uplinks): a durable queue bound to
/// the forward rules, and a loop that connects through its <see cref="ICloudSink"/> to the first
/// reachable endpoint and drains the queue through an in-flight window. A message leaves the
/// queue only when the broker has confirmed it; whatever is in flight when the link goes is
/// requeued in order and sent again first. A message the broker refuses moves to the uplink's
/// dead-letter queue.
/// </summary>
internal sealed partial class CloudForwarder
{
    public const string OriginProtocol = "uplink";

    private const int DeadLetterLimit = 10_000;

    private readonly UplinkOptions _options;
    private readonly ICloudSink _sink;
    private readonly IMessageRouter _router;
    private readonly GatewayStatus _status;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly UplinkEndpoint[] _endpoints;
    private readonly string _primary;

    private readonly Lock _stateLock = new();
    private long _forwarded;
    private long _cloudRejected;
    private long _lastConfirmed; // timestamp; 0 = never
    private int _inFlight;
    private long _awaitingSince; // send timestamp of the oldest publish not yet confirmed; 0 = none
    private volatile string? _endpoint;
    private volatile PublishWindow? _publishes; // the session's, while one runs

    public CloudForwarder(string name, UplinkOptions options, ICloudSink sink, DownlinkCounters downlink, IMessageRouter router, GatewayStatus status, ILoggerFactory loggers, TimeProvider time)
    {
        Name = name;
        _options = options;
        _sink = sink;
        Downlink = downlink;
        _router = router;
        _status = status;
        _logger = loggers.CreateLogger("Gateway.Uplinks." + name);
        _time = time;
        _endpoints = [.. options.Endpoints.Select(e => UplinkEndpoint.TryParse(e, out var endpoint) ? endpoint : throw new ArgumentException($"bad endpoint '{e}'", nameof(options)))];
        _primary = _endpoints[0].ToString();

        var arguments = new Dictionary<string, object?>
        {
            ["x-max-length"] = options.Buffer.MaxMessages,
            ["x-max-length-bytes"] = options.Buffer.MaxBytes,
            ["x-overflow"] = options.Buffer.Overflow,
        };
        if (options.Buffer.MaxAge > TimeSpan.Zero)
        {
            arguments["x-message-ttl"] = (long)options.Buffer.MaxAge.TotalMilliseconds;
        }

        DeadLetterQueue = router.DeclareQueue(QueueName + ".dead", new QueueOptions
        {
            Durable = true,
            FromConfiguration = true,
            Arguments = new Dictionary<string, object?> { ["x-max-length"] = DeadLetterLimit },
        });
        Queue = router.DeclareQueue(QueueName, new QueueOptions
        {
            Durable = true,
            FromConfiguration = true,
            Arguments = arguments,
            IgnoreOrigin = new MessageOrigin(OriginProtocol, name, null), // what came down this uplink never goes back up it
        });
        foreach (var rule in options.Forward)
        {
            router.Bind(MessageRouter.AmqTopic, QueueName, MqttTopics.ToBindingKey(rule.Filter));
        }

        Unsynced = new UnsyncedRemovals(Queue, options.MaxInFlight, () => _publishes?.Drive());
        UplinkLog.Opened(_logger, name, Queue.ReadyCount);
        Fire(LinkEvent.Opened);
    }

    public string Name { get; }

    public string QueueName => "uplink." + Name;

    public MessageQueue Queue { get; }

    public MessageQueue DeadLetterQueue { get; private set; }

    /// <summary>Confirmed messages a crash could still send again (their removal not yet on disk).</summary>
    public UnsyncedRemovals Unsynced { get; }

    public LinkState State { get; private set; }

    public string? Endpoint => _endpoint;

    public long Forwarded => Interlocked.Read(ref _forwarded);

    public long CloudRejected => Interlocked.Read(ref _cloudRejected);

    /// <summary>What came down from the cloud (counted by the sink).</summary>
    public DownlinkCounters Downlink { get; }

    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Time since the broker last confirmed a message; null before the first.</summary>
    public TimeSpan? LastConfirmedAge
    {
        get
        {
            var last = Interlocked.Read(ref _lastConfirmed);
            return last == 0 ? null : _time.GetElapsedTime(last);
        }
    }

    public async Task RunAsync(CancellationToken stopping)
    {
        var index = 0;
        var failures = 0;
        while (!stopping.IsCancellationRequested)
        {
            var endpoint = _endpoints[index];
            ConnectResult result;
            try
            {
                result = await _sink.ConnectAsync(endpoint, stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                break;
            }

            if (result.Link is not { } link)
            {
                var unauthorized = result.Failure == FailureKind.Unauthorized;
                if (unauthorized && !result.Answered)
                {
                    UplinkLog.NotAuthorized(_logger, Name, result.Reason, _options.ReconnectDelayMax.TotalSeconds);
                }
                else
                {
                    UplinkLog.ConnectFailed(_logger, Name, endpoint.ToString(), result.Reason);
                }

                Fire(unauthorized ? LinkEvent.Refused : LinkEvent.Unreachable);
                if (!result.Answered)
                {
                    // Unreachable: the next endpoint; once every one failed, back off before the next round.
                    index = (index + 1) % _endpoints.Length;
                    if (index != 0)
                    {
                        continue;
                    }
                }

                failures++;
                await Task.Delay(ReconnectBackoff.Delay(failures, _options.ReconnectDelayMax), _time, stopping).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                continue;
            }

            failures = 0;
            SessionEnd end;
            await using (link)
            {
                end = await RunSessionAsync(link, endpoint, index, stopping);
            }

            index = end == SessionEnd.ReturnToPrimary ? 0 : index; // a lost link tries the same endpoint again first
        }

        Fire(LinkEvent.Lost);
    }

    // Moves the state machine; a change is logged and shown (metrics, status LED).
    private void Fire(LinkEvent linkEvent)
    {
        LinkState state;
        lock (_stateLock)
        {
            state = LinkStateTable.Next(State, linkEvent);
            if (state == State)
            {
                return;
            }

            State = state;
        }

        UplinkLog.State(_logger, Name, state);
        _status.SetLinkState(Name, state);
    }

    // Connected or draining: whether more than the window waits.
    private void CheckBacklog() =>
        Fire(Queue.ReadyCount > Math.Max(_options.MaxInFlight, 1) ? LinkEvent.BacklogHigh : LinkEvent.BacklogLow);
}
