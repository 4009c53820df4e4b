using System.Threading.Channels;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Gateway.TestKit;

/// <summary>An MQTTnet client that records what it receives, for tests.</summary>
public sealed class MqttTestClient : IAsyncDisposable
{
    private readonly Channel<MqttApplicationMessage> _received = Channel.CreateUnbounded<MqttApplicationMessage>();

    private MqttTestClient(IMqttClient client)
    {
        Client = client;
        client.ApplicationMessageReceivedAsync += e =>
        {
            _received.Writer.TryWrite(e.ApplicationMessage);
            return Task.CompletedTask;
        };
    }

    public IMqttClient Client { get; }

    public MqttClientConnectResult? ConnectResult { get; private set; }

    public static async Task<MqttTestClient> ConnectAsync(
        int port,
        string? clientId = null,
        MqttProtocolVersion version = MqttProtocolVersion.V500,
        bool cleanSession = true,
        Action<MqttClientOptionsBuilder>? configure = null,
        string? webSocketUri = null)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var test = new MqttTestClient(client);
        var builder = new MqttClientOptionsBuilder()
            .WithProtocolVersion(version)
            .WithClientId(clientId ?? "test-" + Guid.NewGuid().ToString("N")[..12])
            .WithCleanSession(cleanSession)
            .WithTimeout(TestContext.DefaultTimeout);
        if (webSocketUri is not null)
        {
            builder.WithWebSocketServer(o => o.WithUri(webSocketUri));
        }
        else
        {
            builder.WithTcpServer("127.0.0.1", port);
        }

        if (!cleanSession && version == MqttProtocolVersion.V500)
        {
            builder.WithSessionExpiryInterval(3600);
        }

        configure?.Invoke(builder);
        test.ConnectResult = await client.ConnectAsync(builder.Build(), TestContext.Timeout());
        return test;
    }

    public async Task SubscribeAsync(string filter, MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtLeastOnce, bool noLocal = false, bool retainAsPublished = false)
    {
        var options = new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic(filter).WithQualityOfServiceLevel(qos).WithNoLocal(noLocal).WithRetainAsPublished(retainAsPublished))
            .Build();
        var result = await Client.SubscribeAsync(options, TestContext.Timeout());
        var code = result.Items.Single().ResultCode;
        if ((int)code >= 0x80)
        {
            throw new InvalidOperationException($"SUBSCRIBE {filter} refused: {code}");
        }
    }

    public Task<MqttClientPublishResult> PublishAsync(string topic, string payload, MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtLeastOnce, bool retain = false) =>
        Client.PublishAsync(
            new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(qos).WithRetainFlag(retain).Build(),
            TestContext.Timeout());

    public Task<MqttClientPublishResult> PublishAsync(MqttApplicationMessage message) => Client.PublishAsync(message, TestContext.Timeout());

    /// <summary>The next message received, or a timeout failure.</summary>
    public async Task<MqttApplicationMessage> ReceiveAsync(TimeSpan? timeout = null) =>
        await _received.Reader.ReadAsync(TestContext.Timeout(timeout)).AsTask().WithTimeout("an MQTT message", timeout);

    /// <summary>Messages already received and not yet taken.</summary>
    public List<MqttApplicationMessage> Drain()
    {
        var list = new List<MqttApplicationMessage>();
        while (_received.Reader.TryRead(out var m))
        {
            list.Add(m);
        }

        return list;
    }

    /// <summary>
    /// Proves nothing more is queued for this client: publishes a marker to a topic only this
    /// client subscribes to and checks that the marker is the next thing to arrive.
    /// </summary>
    public async Task AssertNothingMoreAsync()
    {
        var marker = "marker/" + Guid.NewGuid().ToString("N");
        await SubscribeAsync(marker);
        await PublishAsync(marker, "marker");
        var next = await ReceiveAsync();
        Xunit.Assert.Equal(marker, next.Topic);
    }

    public async ValueTask DisposeAsync()
    {
        if (Client.IsConnected)
        {
            try
            {
                await Client.DisconnectAsync(new MqttClientDisconnectOptions(), TestContext.Timeout());
            }
            catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException)
            {
            }
        }

        Client.Dispose();
    }
}
