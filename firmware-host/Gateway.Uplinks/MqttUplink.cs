using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Gateway.Mqtt;
using Gateway.Routing;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Adapter;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Gateway.Uplinks;

/// <summary>
/// One MQTT uplink (ARCHITECTURE.md, uplinks): a durable queue bound to the forward rules, and a
/// loop that connects to the first reachable endpoint and drains the queue through an in-flight
/// window. A message leaves the queue only when the broker has confirmed it (PUBACK); whatever
/// is in flight when the link goes is requeued in order and sent again first. A PUBACK with a
/// failure reason moves the message to the uplink's dead-letter queue.
/// </summary>
internal sealed partial class MqttUplink
{
    public const string OriginProtocol = "uplink";

    private const int DeadLetterLimit = 10_000;
    private static readonly TimeSpan DeadLetterRetryMin = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan DeadLetterRetryMax = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan ReconnectDelayMin = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MinStatusTick = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxStatusTick = TimeSpan.FromSeconds(1);

    private readonly UplinkOptions _options;
    private readonly IMessageRouter _router;
    private readonly GatewayStatus _status;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly UplinkEndpoint[] _endpoints;
    private readonly MqttClientFactory _factory;
    private readonly BatchingClientAdapterFactory _adapters;
    private readonly string _clientId;
    private readonly string _primary;
    private readonly X509Certificate2Collection? _trust;
    private readonly X509Certificate2? _clientCertificate;
    private readonly IRetainedMessageSink? _retained; // where a downlinked retained message is kept (the MQTT endpoint)

    private readonly Lock _stateLock = new();
    private long _forwarded;
    private long _cloudRejected;
    private long _downlinked;
    private long _downlinkTooLarge;
    private long _downlinkFailed;
    private long _downlinkRefused;
    private long _lastConfirmed; // timestamp; 0 = never
    private int _inFlight;
    private long _awaitingSince; // send timestamp of the oldest publish not yet confirmed; 0 = none
    private volatile bool _connected;
    private volatile bool _stalled;
    private volatile bool _notAuthorized;
    private volatile string? _endpoint;
    private volatile PublishWindow? _publishes; // the session's, while one runs

    public MqttUplink(string name, UplinkOptions options, IMessageRouter router, GatewayStatus status, ILoggerFactory loggers, TimeProvider time, IRetainedMessageSink? retained = null)
    {
        _retained = retained;
        var logger = loggers.CreateLogger("Gateway.Uplinks." + name);
        _adapters = new BatchingClientAdapterFactory(options.MaxPacketSize, bytes =>
        {
            Interlocked.Increment(ref _downlinkTooLarge);
            UplinkLog.OversizedDropped(logger, name, bytes, options.MaxPacketSize);
        });
        _factory = new MqttClientFactory(new MqttNetLoggerBridge(loggers), _adapters);
        Name = name;
        _options = options;
        _router = router;
        _status = status;
        _logger = logger;
        _time = time;
        _endpoints = [.. options.Endpoints.Select(e => UplinkEndpoint.TryParse(e, out var endpoint) ? endpoint : throw new ArgumentException($"bad endpoint '{e}'", nameof(options)))];
        _primary = _endpoints[0].ToString();
        _clientId = options.ClientId ?? $"gateway-{Environment.MachineName}-{name}";
        (_trust, _clientCertificate) = LoadTls(options.Tls);

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
        UplinkLog.Opened(logger, name, Queue.ReadyCount);
        SetState();
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

    /// <summary>Cloud messages delivered locally (downlink rules).</summary>
    public long Downlinked => Interlocked.Read(ref _downlinked);

    /// <summary>Cloud messages over MaxPacketSize: dropped, and acknowledged to the broker.</summary>
    public long DownlinkTooLarge => Interlocked.Read(ref _downlinkTooLarge);

    /// <summary>Cloud messages the gateway could not deliver locally: not acknowledged, so the broker sends them again after a reconnect.</summary>
    public long DownlinkFailed => Interlocked.Read(ref _downlinkFailed);

    /// <summary>
    /// Cloud messages a local durable queue refused (full with <c>reject-publish</c>, or the disk
    /// under the free-space reserve): over MQTT 5 the broker is told (PUBACK 0x97, quota
    /// exceeded); over 3.1.1 they are not acknowledged, so the broker sends them again after a
    /// reconnect.
    /// </summary>
    public long DownlinkRefused => Interlocked.Read(ref _downlinkRefused);

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
            using var client = _factory.CreateMqttClient();
            MqttClientConnectResult result;
            try
            {
                using var connecting = CancellationTokenSource.CreateLinkedTokenSource(stopping);
                connecting.CancelAfter(ConnectTimeout);
                result = await client.ConnectAsync(ClientOptions(endpoint), connecting.Token);
                _notAuthorized = false;
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException or SocketException or IOException or AuthenticationException)
            {
                var reason = ex.Message;
                _notAuthorized = ex is MqttConnectingFailedException && IsRefusal(reason);
                if (_notAuthorized)
                {
                    UplinkLog.NotAuthorized(_logger, Name, reason, _options.ReconnectDelayMax.TotalSeconds);
                }
                else
                {
                    UplinkLog.ConnectFailed(_logger, Name, endpoint.ToString(), reason);
                }

                SetState();
                index = (index + 1) % _endpoints.Length;
                if (index == 0)
                {
                    // Every endpoint refused: back off (doubling, capped, jittered) before the next round.
                    failures++;
                    await Task.Delay(Backoff(failures), _time, stopping).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }

                continue;
            }

            if (result.ResultCode != MqttClientConnectResultCode.Success)
            {
                _notAuthorized = IsRefusal(result.ResultCode.ToString());
                UplinkLog.ConnectFailed(_logger, Name, endpoint.ToString(), result.ResultCode.ToString());
                SetState();
                failures++;
                await Task.Delay(Backoff(failures), _time, stopping).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                continue;
            }

            failures = 0;
            var end = await RunSessionAsync(client, endpoint, index, result, stopping);
            await DisconnectQuietlyAsync(client);
            index = end == SessionEnd.ReturnToPrimary ? 0 : index; // a lost link tries the same endpoint again first
        }

        _connected = false;
        SetState();
    }

    private static bool IsRefusal(string reason) =>
        reason.Contains(nameof(MqttClientConnectResultCode.NotAuthorized), StringComparison.Ordinal) ||
        reason.Contains(nameof(MqttClientConnectResultCode.BadUserNameOrPassword), StringComparison.Ordinal) ||
        reason.Contains(nameof(MqttClientConnectResultCode.ClientIdentifierNotValid), StringComparison.Ordinal);

    private TimeSpan Backoff(int failures)
    {
        var cap = _options.ReconnectDelayMax;
        var exponential = ReconnectDelayMin * Math.Pow(2, Math.Min(failures - 1, 20));
        var delay = exponential < cap ? exponential : cap;
        return delay * (0.5 + (Random.Shared.NextDouble() * 0.5)); // jitter: many gateways must not reconnect in step
    }

    private enum SessionEnd
    {
        Lost,
        Stalled,
        ReturnToPrimary,
        Stopping,
    }

    private async Task<SessionEnd> RunSessionAsync(IMqttClient client, UplinkEndpoint endpoint, int index, MqttClientConnectResult result, CancellationToken stopping)
    {
        var window = result.ReceiveMaximum is > 0 and var receiveMaximum ? Math.Min(_options.MaxInFlight, (int)receiveMaximum) : _options.MaxInFlight;
        using var session = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        using var sending = CancellationTokenSource.CreateLinkedTokenSource(session.Token);
        string? lostReason = null;
        Func<MqttClientDisconnectedEventArgs, Task> onDisconnected = e =>
        {
            lostReason ??= e.Exception?.Message ?? e.Reason.ToString();
            return session.CancelAsync();
        };
        client.DisconnectedAsync += onDisconnected;
        client.ApplicationMessageReceivedAsync += OnDownlinkAsync;

        _endpoint = endpoint.ToString();
        _connected = true;
        if (!await SubscribeDownlinksAsync(client, session.Token))
        {
            client.ApplicationMessageReceivedAsync -= OnDownlinkAsync;
            client.DisconnectedAsync -= onDisconnected;
            _connected = false;
            SetState();
            return stopping.IsCancellationRequested ? SessionEnd.Stopping : SessionEnd.Lost;
        }

        // Once downlinks are subscribed: ready both ways. A grant below MaxInFlight bounds the
        // rate to that many per round trip, which over a WAN is what an operator needs to know.
        UplinkLog.Connected(_logger, Name, _endpoint, window, window < _options.MaxInFlight ? "the broker's Receive Maximum" : "MaxInFlight");

        var consumer = Queue.AddConsumer(new ConsumerOptions { Prefetch = window, Tag = "uplink:" + Name });
        var adapter = _adapters.Last!;
        var publishes = new PublishWindow(this, adapter, consumer, window, session.Token);
        adapter.PublishWindow = publishes;
        _publishes = publishes;
        SessionEnd end;
        try
        {
            SetState();
            using var stopSending = sending.Token.Register(publishes.StopSending);
            var pump = PumpAsync(publishes, consumer, session.Token);
            using var stall = CancellationTokenSource.CreateLinkedTokenSource(session.Token);
            var confirm = ConfirmAsync(publishes, stall, session.Token);
            var keepAlive = KeepAliveAsync(client, session.Token);
            var primary = index > 0 ? WatchPrimaryAsync(session.Token) : Task.Delay(Timeout.Infinite, session.Token);
            var status = StatusAsync(stall, session.Token);

            var first = await Task.WhenAny(confirm, keepAlive, primary);
            if (first == primary && !session.IsCancellationRequested)
            {
                // Finish what is in flight, then move: no duplicates from a planned switch.
                UplinkLog.ReturningToPrimary(_logger, Name, _primary);
                await sending.CancelAsync();
                await ((Task)confirm).WaitAsync(_options.StallTimeout, _time, session.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                end = SessionEnd.ReturnToPrimary;
            }
            else if (confirm.IsCompletedSuccessfully && confirm.Result == SessionEnd.Stalled)
            {
                end = SessionEnd.Stalled;
            }
            else
            {
                lostReason = confirm.Exception?.InnerException?.Message ?? lostReason;
                lostReason ??= keepAlive.IsCompletedSuccessfully ? keepAlive.Result : "connection closed";
                end = stopping.IsCancellationRequested ? SessionEnd.Stopping : SessionEnd.Lost;
            }

            await session.CancelAsync();
            await Task.WhenAll(pump, confirm, keepAlive, primary, status).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        finally
        {
            // Everything not confirmed goes back to the queue, in order, flagged redelivered.
            await publishes.CloseAsync();
            adapter.PublishWindow = null;
            _publishes = null;
            consumer.Dispose();
            client.ApplicationMessageReceivedAsync -= OnDownlinkAsync;
            client.DisconnectedAsync -= onDisconnected;
            _connected = false;
            Volatile.Write(ref _inFlight, 0);
            Volatile.Write(ref _awaitingSince, 0);
        }

        if (end is SessionEnd.Lost)
        {
            UplinkLog.Lost(_logger, Name, _endpoint, lostReason ?? "closed", Queue.ReadyCount);
        }

        SetState();
        return end;
    }

    // Wakes the window when messages arrive while it has room and nothing to send; with the
    // window full, the broker's acknowledgements drive the sends.
    private static async Task PumpAsync(PublishWindow publishes, QueueConsumer consumer, CancellationToken cancellationToken)
    {
        try
        {
            while (await publishes.WaitStarvedAsync(cancellationToken))
            {
                if (!await consumer.WaitToReadAsync(cancellationToken))
                {
                    publishes.StopSending(); // the queue is gone
                    return;
                }

                publishes.Drive();
            }
        }
        catch (OperationCanceledException)
        {
            // Session over.
        }
    }

    // Returns Stalled when the oldest publish waits past the bound (StatusAsync watches it and
    // cancels `stall`: no timer per message), Lost when the connection or a send fails, or when
    // sending was stopped and everything in flight is confirmed.
    private async Task<SessionEnd> ConfirmAsync(PublishWindow publishes, CancellationTokenSource stall, CancellationToken cancellationToken)
    {
        try
        {
            return await publishes.Completion.WaitAsync(stall.Token);
        }
        catch (OperationCanceledException) when (stall.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            _stalled = true;
            UplinkLog.Stalled(_logger, Name, _endpoint ?? "?", _options.StallTimeout.TotalSeconds, InFlight);
            SetState();
            return SessionEnd.Stalled;
        }
        catch (OperationCanceledException)
        {
            return SessionEnd.Lost;
        }
        catch (Exception ex) when (ex is MqttCommunicationException or ObjectDisposedException)
        {
            return SessionEnd.Lost; // the connection went with publishes in flight
        }
    }

    // The message leaves the uplink's queue only once the dead-letter queue has it on disk. While
    // that queue refuses it (the disk under Storage:MinFreeMegabytes, a saturated store), sending
    // waits and this publish is tried again; if the session ends first, the message stays queued.
    private async Task DeadLetterAsync(GatewayMessage message, string topic, int reasonCode, string? reasonString, CancellationToken cancellationToken)
    {
        var reason = $"{(MqttClientPublishReasonCode)reasonCode} (0x{reasonCode:x2}){(string.IsNullOrEmpty(reasonString) ? string.Empty : ": " + reasonString)}";
        var headers = message.Properties.Headers is { } original ? new Dictionary<string, object?>(original) : new Dictionary<string, object?>(3);
        headers["x-uplink"] = Name;
        headers["x-uplink-topic"] = topic;
        headers["x-uplink-reason"] = reason;
        var copy = message.Readdress(string.Empty, DeadLetterQueue.Name, message.Properties with { Headers = headers });
        var retry = DeadLetterRetryMin;
        // Not cancelled while the commit is awaited: a message on its way into the dead-letter
        // queue gets there, and is not sent to the broker again after a reconnect.
        while ((await _router.PublishAsync(copy, CancellationToken.None)).Status != RouteStatus.Routed)
        {
            if (!_router.TryGetQueue(DeadLetterQueue.Name, out _) && RedeclareDeadLetterQueue())
            {
                continue; // deleted at run time (through the router): declared again, as at start
            }

            if (retry == DeadLetterRetryMin)
            {
                UplinkLog.DeadLetterRefused(_logger, Name, topic, DeadLetterQueue.Name);
            }

            await Task.Delay(retry, _time, cancellationToken); // the session ending stops the wait; the message stays queued
            retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, DeadLetterRetryMax.Ticks));
        }

        Interlocked.Increment(ref _cloudRejected);
        UplinkLog.Rejected(_logger, Name, topic, reason, DeadLetterQueue.Name);
    }

    private bool RedeclareDeadLetterQueue()
    {
        try
        {
            DeadLetterQueue = _router.DeclareQueue(DeadLetterQueue.Name, DeadLetterQueue.Options);
            UplinkLog.DeadLetterQueueDeclaredAgain(_logger, Name, DeadLetterQueue.Name);
            return true;
        }
        catch (RoutingException)
        {
            return false; // declared meanwhile, with other arguments: the next try goes to it
        }
    }

    // Returns why the link is dead. A ping every half keep-alive, each allowed half a keep-alive:
    // a link that went silent is found within one keep-alive (the issue's bound is 1.5).
    private async Task<string> KeepAliveAsync(IMqttClient client, CancellationToken cancellationToken)
    {
        var interval = _options.KeepAlive / 2;
        while (true)
        {
            await Task.Delay(interval, _time, cancellationToken);
            using var ping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            ping.CancelAfter(interval);
            try
            {
                await client.PingAsync(ping.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return $"no PINGRESP within {interval.TotalSeconds:F1} s";
            }
            catch (MqttCommunicationException ex)
            {
                return ex.Message;
            }
        }
    }

    private async Task WatchPrimaryAsync(CancellationToken cancellationToken)
    {
        var primary = _endpoints[0];
        while (true)
        {
            await Task.Delay(_options.ReturnToPrimaryInterval, _time, cancellationToken);
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            attempt.CancelAfter(TimeSpan.FromSeconds(2));
            try
            {
                await socket.ConnectAsync(primary.Host, primary.Port, attempt.Token);
                return;
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                // Still down.
            }
        }
    }

    // Publishes state, and ends a session whose oldest publish has waited past StallTimeout.
    private async Task StatusAsync(CancellationTokenSource stall, CancellationToken cancellationToken)
    {
        var tick = _options.StallTimeout / 4;
        tick = tick < MinStatusTick ? MinStatusTick : tick > MaxStatusTick ? MaxStatusTick : tick;
        using var timer = new PeriodicTimer(tick, _time);
        var sinceState = TimeSpan.Zero;
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            var since = Volatile.Read(ref _awaitingSince);
            if (since != 0 && _time.GetElapsedTime(since) >= _options.StallTimeout)
            {
                await stall.CancelAsync();
            }

            sinceState += tick;
            if (sinceState >= MaxStatusTick)
            {
                sinceState = TimeSpan.Zero;
                SetState();
            }
        }
    }

    // False when the link dropped or timed out mid-subscribe: the session ends and the next one subscribes again.
    private async Task<bool> SubscribeDownlinksAsync(IMqttClient client, CancellationToken cancellationToken)
    {
        foreach (var rule in _options.Downlink)
        {
            var filter = new MqttTopicFilterBuilder()
                .WithTopic(rule.Filter)
                .WithQualityOfServiceLevel((MqttQualityOfServiceLevel)rule.Qos)
                .WithNoLocal(IsV5) // the broker must not echo what this uplink forwards
                .WithRetainAsPublished(IsV5) // a live retained message stays retained here (3.1.1 marks only those sent on subscribing)
                .Build();
            try
            {
                var result = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter).Build(), cancellationToken);
                var code = result.Items.Count > 0 ? (int)result.Items.First().ResultCode : 0x80;
                if (code >= 0x80)
                {
                    UplinkLog.SubscribeFailed(_logger, Name, rule.Filter, result.Items.Count > 0 ? result.Items.First().ResultCode.ToString() : "no answer");
                }
            }
            catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException)
            {
                if (!cancellationToken.IsCancellationRequested)
                {
                    UplinkLog.SubscribeInterrupted(_logger, Name, rule.Filter, ex.Message);
                }

                return false;
            }
        }

        return true;
    }

    private async Task OnDownlinkAsync(MqttApplicationMessageReceivedEventArgs e)
    {
        var topic = e.ApplicationMessage.Topic;
        if (topic == CheckedInput.DroppedTopic)
        {
            // In place of a message over MaxPacketSize, dropped (and counted) as it came in.
            e.ReasonCode = MqttApplicationMessageReceivedReasonCode.ImplementationSpecificError;
            return;
        }

        foreach (var rule in _options.Downlink)
        {
            if (!MqttTopicFilterComparer.Compare(topic, rule.Filter).Equals(MqttTopicFilterCompareResult.IsMatch))
            {
                continue;
            }

            var local = rule.Prefix + Strip(topic, rule.StripPrefix);
            try
            {
                var received = MqttMessageMapper.ToGateway(e.ApplicationMessage, Name, null);
                var message = new GatewayMessage(MessageRouter.AmqTopic, MqttTopics.ToRoutingKey(local), received.Body, received.Properties, new MessageOrigin(OriginProtocol, Name, null));
                if (e.ApplicationMessage.Retain && _retained is not null)
                {
                    // Retained at the cloud, retained here: a local subscriber that comes later gets it too.
                    await _retained.RetainAsync(local, message, CancellationToken.None);
                }

                var routed = await _router.PublishAsync(message, CancellationToken.None); // PUBACK to the cloud once it is routed (and stored)
                if (routed.Status == RouteStatus.Rejected)
                {
                    // A durable queue it routes to refused it (full with reject-publish, low disk):
                    // answered as a local publisher of the same MQTT version would be, never
                    // acknowledged as kept.
                    Interlocked.Increment(ref _downlinkRefused);
                    UplinkLog.DownlinkRefused(_logger, Name, topic, local);
                    if (IsV5)
                    {
                        e.ReasonCode = MqttApplicationMessageReceivedReasonCode.QuotaExceeded;
                    }
                    else
                    {
                        e.ProcessingFailed = true;
                    }

                    return;
                }

                Interlocked.Increment(ref _downlinked);
            }
#pragma warning disable CA1031 // Whatever the store or router throws, the cloud must not get a PUBACK for it.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Interlocked.Increment(ref _downlinkFailed);
                UplinkLog.DownlinkFailed(_logger, Name, topic, ex);
                e.ProcessingFailed = true;
            }

            return;
        }
    }

    private MqttApplicationMessage ToRemote(GatewayMessage message)
    {
        var mqtt = MqttMessageMapper.ToMqtt(message);
        foreach (var rule in _options.Forward)
        {
            if (MqttTopicFilterComparer.Compare(mqtt.Topic, rule.Filter) == MqttTopicFilterCompareResult.IsMatch)
            {
                mqtt.Topic = rule.Prefix + Strip(mqtt.Topic, rule.StripPrefix);
                mqtt.QualityOfServiceLevel = (MqttQualityOfServiceLevel)rule.Qos;
                mqtt.Retain = rule.Retain;
                break;
            }
        }

        if (mqtt.QualityOfServiceLevel == MqttQualityOfServiceLevel.ExactlyOnce)
        {
            mqtt.QualityOfServiceLevel = MqttQualityOfServiceLevel.AtLeastOnce; // forward rules are QoS 0 or 1
        }

        if (!IsV5)
        {
            // MQTT 3.1.1 has no properties: what a 5.0, AMQP or STOMP publisher attached stays
            // behind, as with mosquitto bridging 5.0 to 3.1.1 (MQTTnet would refuse the message).
            mqtt.ContentType = null;
            mqtt.CorrelationData = null;
            mqtt.ResponseTopic = null;
            mqtt.UserProperties = null;
            mqtt.MessageExpiryInterval = 0;
            mqtt.PayloadFormatIndicator = MqttPayloadFormatIndicator.Unspecified;
        }

        return mqtt;
    }

    private static string Strip(string topic, string prefix) =>
        prefix.Length > 0 && topic.StartsWith(prefix, StringComparison.Ordinal) ? topic[prefix.Length..] : topic;

    private bool IsV5 => _options.ProtocolVersion is "5" or "5.0";

    private MqttClientOptions ClientOptions(UplinkEndpoint endpoint)
    {
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(endpoint.Host, endpoint.Port)
            .WithClientId(_clientId)
            .WithProtocolVersion(IsV5 ? MqttProtocolVersion.V500 : MqttProtocolVersion.V311)
            .WithKeepAlivePeriod(_options.KeepAlive)
            .WithTimeout(_options.StallTimeout * 2) // our own stall and keep-alive checks come first
            .WithCleanSession(_options.Downlink.Count == 0);
        if (_options.Downlink.Count > 0 && IsV5)
        {
            builder.WithSessionExpiryInterval(24 * 3600); // downlink messages wait at the broker while the link is down
        }

        // MaxPacketSize is not announced at CONNECT: mosquitto 2.0 then drops larger messages
        // itself but never frees their places in flight, and once they fill its in-flight limit
        // (20 by default) it sends the uplink no QoS 1 message at all. The uplink drops them
        // itself and answers for them (BatchingMqttChannel).

        if (_options.Username is not null)
        {
            builder.WithCredentials(_options.Username, _options.Password);
        }

        if (endpoint.Tls)
        {
            builder.WithTlsOptions(tls =>
            {
                tls.UseTls()
                    .WithTargetHost(_options.Tls.ServerName ?? endpoint.Host)
                    .WithCertificateValidationHandler(ValidateServerCertificate);
                if (_clientCertificate is not null)
                {
                    tls.WithClientCertificates([_clientCertificate]);
                }
            });
        }

        var options = builder.Build();
        if (options.ChannelOptions is MqttClientTcpOptions tcp)
        {
            // MQTTnet fixes both socket buffers at 8 KiB by default, which on Linux turns off
            // kernel autotuning; draining a backlog stalled at a few hundred messages per second.
            // It sets both from BufferSize; the kernel caps it at net.core.[rw]mem_max.
            tcp.BufferSize = 1024 * 1024;
        }

        return options;
    }

    // With a CA file, the broker's chain must end in one of its certificates (and only those);
    // without one, the system trust store decides. The name is always checked.
    private bool ValidateServerCertificate(MqttClientCertificateValidationEventArgs e)
    {
        if ((e.SslPolicyErrors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0 ||
            (e.SslPolicyErrors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0 || e.Certificate is null)
        {
            return false;
        }

        if (_trust is null)
        {
            return e.SslPolicyErrors == SslPolicyErrors.None;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_trust);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(e.Certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(e.Certificate.GetRawCertData()));
    }

    private static (X509Certificate2Collection? Trust, X509Certificate2? Client) LoadTls(UplinkTlsOptions tls)
    {
        X509Certificate2Collection? trust = null;
        if (!string.IsNullOrEmpty(tls.CaFile))
        {
            trust = [];
            trust.ImportFromPemFile(tls.CaFile);
        }

        X509Certificate2? client = null;
        if (!string.IsNullOrEmpty(tls.CertificateFile) && !string.IsNullOrEmpty(tls.KeyFile))
        {
            // SslStream on Linux wants the key in a PKCS#12 container, not an ephemeral PEM key.
            using var pem = X509Certificate2.CreateFromPemFile(tls.CertificateFile, tls.KeyFile);
            client = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }

        return (trust, client);
    }

    private static async Task DisconnectQuietlyAsync(IMqttClient client)
    {
        if (!client.IsConnected)
        {
            return;
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        try
        {
            await client.DisconnectAsync(new MqttClientDisconnectOptions(), timeout.Token);
        }
        catch (Exception ex) when (ex is MqttCommunicationException or OperationCanceledException or ObjectDisposedException)
        {
            // The link is gone either way.
        }
    }

    private void SetState()
    {
        var backlog = Queue.ReadyCount;
        var state = _notAuthorized ? LinkState.Failed
            : _stalled ? LinkState.Stalled
            : !_connected ? LinkState.Buffering
            : backlog > Math.Max(_options.MaxInFlight, 1) ? LinkState.Draining
            : LinkState.Connected;
        lock (_stateLock)
        {
            if (state == State)
            {
                return;
            }

            State = state;
        }

        UplinkLog.State(_logger, Name, state);
        _status.SetLinkState(Name, state);
    }
}
