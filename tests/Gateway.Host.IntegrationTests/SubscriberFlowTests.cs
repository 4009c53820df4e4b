using System.Collections;
using System.Globalization;
using System.Net;
using Gateway.Protocols.Mqtt;
using MQTTnet;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using MQTTnet.Server;

namespace Gateway.Host.IntegrationTests;

/// <summary>
/// The subscriber flow control (SubscriberFlow) with messages MQTTnet drops from a session queue
/// over <c>Mqtt:MaxPendingMessagesPerClient</c> (found by the fuzz run: a SUBSCRIBE to thousands
/// of retained messages failed with TimeoutException): dropped messages are no longer pending,
/// and running out of the bounded wait is not an error.
/// </summary>
[Trait("Category", "Integration")]
public sealed class SubscriberFlowTests
{
    [Fact]
    public async Task Messages_dropped_from_a_full_session_queue_are_no_longer_pending()
    {
        var flow = NewFlow();
        await flow.OnConnectedAsync(Connected("dropper"));
        for (var i = 0; i < SubscriberFlow.PendingLimit + 100; i++)
        {
            await flow.OnEnqueueAsync(Enqueue("dropper"));
            await flow.OnOverwrittenAsync(new QueueMessageOverwrittenEventArgs("dropper", new MqttPublishPacket { Topic = "t" }));
        }

        // Nothing is pending, so the next message does not wait for sends that cannot come.
        Assert.True(flow.OnEnqueueAsync(Enqueue("dropper")).IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Running_out_of_the_bounded_wait_is_not_an_error()
    {
        var flow = NewFlow();
        await flow.OnConnectedAsync(Connected("slow"));
        for (var i = 0; i < SubscriberFlow.PendingLimit; i++)
        {
            await flow.OnEnqueueAsync(Enqueue("slow"));
        }

        // Over the limit and sent recently (at connect): waits, at most the stall time, then carries on.
        var waiting = flow.OnEnqueueAsync(Enqueue("slow"));
        Assert.False(waiting.IsCompleted);
        await waiting.WaitAsync(TestContext.DefaultTimeout); // used to throw TimeoutException after StallTime
    }

    [Fact]
    public async Task Subscribing_to_more_retained_messages_than_the_session_queue_holds_succeeds_without_errors()
    {
        const int Retained = 2_300; // more than SubscriberFlow.PendingLimit (2,048)
        await using var gateway = await TestGateway.StartAsync("--Mqtt:MaxPendingMessagesPerClient=16", "--Storage:Durability=fast");
        await using (var publisher = await MqttTestClient.ConnectAsync(gateway.MqttPort, "retainer"))
        {
            for (var i = 0; i < Retained; i++)
            {
                await publisher.PublishAsync($"many/{i}", i.ToString(CultureInfo.InvariantCulture), MqttQualityOfServiceLevel.AtMostOnce, retain: true);
            }

            await publisher.PublishAsync("many/last", "last", MqttQualityOfServiceLevel.AtLeastOnce, retain: true); // after the rest
        }

        await using var subscriber = await MqttTestClient.ConnectAsync(gateway.MqttPort, "greedy");

        // Used to fail: each retained message past the limit waited for sends that dropped
        // messages never make, and the bounded wait threw, failing the SUBSCRIBE (error logged).
        await subscriber.SubscribeAsync("many/#", MqttQualityOfServiceLevel.AtMostOnce).WithTimeout("the SUBACK");
        Assert.StartsWith("many/", (await subscriber.ReceiveAsync()).Topic, StringComparison.Ordinal);

        // Still served afterwards: a live message arrives (behind what is left of the retained ones).
        await subscriber.SubscribeAsync("live/check");
        await subscriber.PublishAsync("live/check", "live");
        while ((await subscriber.ReceiveAsync()).Topic != "live/check")
        {
        }

        Assert.Empty(gateway.Logs.Errors());
    }

    private static SubscriberFlow NewFlow() =>
        new(new SessionMemory(new Gateway.Routing.MemoryBudget(64 * 1024 * 1024)), new MqttCounters(), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

    private static ClientConnectedEventArgs Connected(string clientId) =>
        new(new MqttConnectPacket { ClientId = clientId }, MQTTnet.Formatter.MqttProtocolVersion.V500, new IPEndPoint(IPAddress.Loopback, 1), new Hashtable());

    private static InterceptingClientApplicationMessageEnqueueEventArgs Enqueue(string clientId) =>
        new("publisher", clientId, new MqttApplicationMessageBuilder().WithTopic("t").Build());
}
