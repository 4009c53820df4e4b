using System.Net.Sockets;
using System.Security.Authentication;
using Gateway.Mqtt;
using Gateway.Routing;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Adapter;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Gateway.Uplinks.Mqtt;

/// <summary>
/// The MQTT half of an uplink: connects with MQTTnet (TLS, credentials, keep-alive, socket
/// buffers, the batching channel), maps forward rules onto cloud topics, and hands each
/// connection to an <see cref="MqttCloudLink"/> that publishes and brings downlinks home.
/// </summary>
internal sealed class MqttCloudSink : ICloudSink
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    private readonly UplinkOptions _options;
    private readonly MqttClientFactory _factory;
    private readonly BatchingClientAdapterFactory _adapters;
    private readonly MqttDownlink _downlink;
    private readonly MqttTlsTrust _tls;
    private readonly string _clientId;

    public MqttCloudSink(string name, UplinkOptions options, IMessageRouter router, DownlinkCounters downlink, ILoggerFactory loggers, TimeProvider time, IRetainedMessageSink? retained = null)
    {
        Time = time;
        _options = options;
        var logger = loggers.CreateLogger("Gateway.Uplinks." + name);
        _adapters = new BatchingClientAdapterFactory(options.MaxPacketSize, bytes =>
        {
            downlink.AddTooLarge();
            UplinkLog.OversizedDropped(logger, name, bytes, options.MaxPacketSize);
        });
        _factory = new MqttClientFactory(new MqttNetLoggerBridge(loggers), _adapters);
        _downlink = new MqttDownlink(name, options, IsV5, router, downlink, logger, retained);
        _tls = new MqttTlsTrust(options.Tls);
        _clientId = options.ClientId ?? $"gateway-{Environment.MachineName}-{name}";
    }

    public TimeProvider Time { get; }

    public bool IsV5 => _options.ProtocolVersion is "5" or "5.0";

    public string RemoteAddress(GatewayMessage message) => ToRemote(message).Topic;

    public async Task<ConnectResult> ConnectAsync(UplinkEndpoint endpoint, CancellationToken cancellationToken)
    {
        var client = _factory.CreateMqttClient();
        try
        {
            MqttClientConnectResult result;
            try
            {
                using var connecting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                connecting.CancelAfter(ConnectTimeout);
                result = await client.ConnectAsync(ClientOptions(endpoint), connecting.Token);
            }
            catch (Exception ex) when (ex is MqttCommunicationException or SocketException or IOException or AuthenticationException ||
                (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                var refused = ex is MqttConnectingFailedException && IsRefusal(ex.Message);
                return ConnectResult.Unreachable(refused ? FailureKind.Unauthorized : FailureKind.Transient, ex.Message);
            }

            if (result.ResultCode != MqttClientConnectResultCode.Success)
            {
                var code = result.ResultCode.ToString();
                return ConnectResult.Refused(IsRefusal(code) ? FailureKind.Unauthorized : FailureKind.Transient, code);
            }

            var link = new MqttCloudLink(this, client, _adapters.Last!, _downlink, result.ReceiveMaximum ?? 0, _options.KeepAlive);
            client = null; // the link's now
            return ConnectResult.Connected(link);
        }
        finally
        {
            client?.Dispose();
        }
    }

    public Task<bool> IsReachableAsync(UplinkEndpoint endpoint, CancellationToken cancellationToken) => TcpProbe.IsReachableAsync(endpoint, cancellationToken);

    /// <summary>The message as the cloud gets it: the first forward rule that matches sets its topic, QoS and retain flag.</summary>
    public MqttApplicationMessage ToRemote(GatewayMessage message)
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

    internal static string Strip(string topic, string prefix) =>
        prefix.Length > 0 && topic.StartsWith(prefix, StringComparison.Ordinal) ? topic[prefix.Length..] : topic;

    private static bool IsRefusal(string reason) =>
        reason.Contains(nameof(MqttClientConnectResultCode.NotAuthorized), StringComparison.Ordinal) ||
        reason.Contains(nameof(MqttClientConnectResultCode.BadUserNameOrPassword), StringComparison.Ordinal) ||
        reason.Contains(nameof(MqttClientConnectResultCode.ClientIdentifierNotValid), StringComparison.Ordinal);

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
                    .WithCertificateValidationHandler(_tls.ValidateServerCertificate);
                if (_tls.ClientCertificate is not null)
                {
                    tls.WithClientCertificates([_tls.ClientCertificate]);
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
}
