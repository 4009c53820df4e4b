using System.Globalization;
using System.Text;
using Gateway.Protocols.Mqtt;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Gateway.Host.IntegrationTests;

/// <summary>
/// Subscribers that do not keep up, and sessions whose clients are away: what the healthy
/// subscribers, the publishers and the memory see.
/// </summary>
[Trait("Category", "Integration")]
public sealed class SlowSubscriberTests
{
    private const int Publishers = 4;
    // 50,000 messages in all: under a loaded CI machine the in-process "healthy" clients can
    // themselves be starved long enough to be left behind, and a total below
    // Mqtt:MaxPendingMessagesPerClient (100,000) means even then nothing is dropped for them.
    private const int PerPublisher = 12_500;

    [Fact]
    public async Task A_slow_reader_costs_healthy_subscribers_no_acknowledged_message_and_does_not_hold_publishers_to_its_pace()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var healthyA = await MqttTestClient.ConnectAsync(gateway.MqttPort);
        await using var healthyB = await MqttTestClient.ConnectAsync(gateway.MqttPort, version: MqttProtocolVersion.V311);
        await healthyA.SubscribeAsync("t/#");
        await healthyB.SubscribeAsync("t/#");
        using var slowStop = new CancellationTokenSource();
        await using var slow = await RawSocketClient.ConnectAsync(gateway.MqttPort);
        await slow.SendAsync(RawMqtt.Connect(4, "slow-reader"));
        await slow.SendAsync(RawMqtt.Subscribe("t/#", qos: 1));
        var slowReading = ReadSlowlyAsync(slow, slowStop.Token); // about 1 KB every 50 ms, never acknowledging

        // Every publisher's messages must be acknowledged: were the publishers held to the slow
        // reader's ~20 KB/s (about 150 messages a second), 50,000 would take minutes and time out.
        await Task.WhenAll(Enumerable.Range(0, Publishers).Select(p => PublishAllAsync(gateway.MqttPort, p)));

        foreach (var healthy in new[] { healthyA, healthyB })
        {
            var seen = new bool[Publishers * PerPublisher];
            var missing = seen.Length;
            while (missing > 0)
            {
                MqttApplicationMessage message;
                try
                {
                    message = await healthy.ReceiveAsync();
                }
                catch (TimeoutException)
                {
                    var warnings = gateway.Logs.Entries.Where(e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Warning).Take(20).Select(e => $"{e.EventId.Id} {e.Message}");
                    Assert.Fail($"{missing} acknowledged messages never reached a healthy subscriber; warnings logged:\n" + string.Join("\n", warnings));
                    throw;
                }

                var index = IndexOf(message);
                if (!seen[index])
                {
                    seen[index] = true;
                    missing--;
                }
            }
        }

        Assert.Contains(gateway.Logs.Entries, e => e.EventId.Id == 1020 && e.Message.Contains("slow-reader", StringComparison.Ordinal));
        await slowStop.CancelAsync();
        await slowReading;
    }

    [Fact]
    public async Task Offline_sessions_fill_the_memory_budget_then_qos0_is_not_queued_for_them_and_qos1_publishers_are_refused_but_nothing_acknowledged_is_lost()
    {
        await using var gateway = await TestGateway.StartAsync("--Memory:BudgetMegabytes=1");
        const int Sessions = 3;
        for (var s = 0; s < Sessions; s++)
        {
            await using var away = await MqttTestClient.ConnectAsync(gateway.MqttPort, $"away-{s}", MqttProtocolVersion.V311, cleanSession: false);
            await away.SubscribeAsync("flood/#");
        }

        var adapter = gateway.Services.GetRequiredService<MqttAdapter>();
        await WaitFor.ConditionAsync(() => adapter.ConnectedClients == 0, "the sessions' clients to go");
        await using var publisher = await MqttTestClient.ConnectAsync(gateway.MqttPort);
        await using var online = await MqttTestClient.ConnectAsync(gateway.MqttPort);
        await online.SubscribeAsync("flood/#", MqttQualityOfServiceLevel.AtMostOnce);
        var payload = new string('q', 100);

        // QoS 0 may take half the budget: past that it is not queued for the sessions, while the
        // connected subscriber, which keeps up, still gets every message.
        const int Flood = 5_000;
        for (var i = 0; i < Flood; i++)
        {
            await publisher.PublishAsync("flood/zero", payload, MqttQualityOfServiceLevel.AtMostOnce);
        }

        for (var i = 0; i < Flood; i++)
        {
            Assert.Equal("flood/zero", (await online.ReceiveAsync()).Topic);
        }

        Assert.True(adapter.Counters.DroppedForMemory > 0, "QoS 0 over half the budget is not queued for offline sessions");
        Assert.Contains(gateway.Logs.Entries, e => e.EventId.Id == 1022);

        // QoS 1 fills the rest; then publishers are refused (quota exceeded), never acknowledged and dropped.
        var acknowledged = new List<string>();
        var refused = false;
        for (var i = 0; i < 20_000 && !refused; i++)
        {
            var body = "kept-" + i.ToString(CultureInfo.InvariantCulture);
            var result = await publisher.PublishAsync("flood/one", body);
            if (result.ReasonCode == MqttClientPublishReasonCode.QuotaExceeded)
            {
                refused = true;
            }
            else
            {
                Assert.True(result.IsSuccess, result.ReasonCode.ToString());
                acknowledged.Add(body);
            }
        }

        Assert.True(refused, "QoS 1 publishes are refused once the budget is full");
        Assert.Contains(gateway.Logs.Entries, e => e.EventId.Id == 1023);

        // Every acknowledged QoS 1 message is waiting in every session.
        for (var s = 0; s < Sessions; s++)
        {
            await using var back = await MqttTestClient.ConnectAsync(gateway.MqttPort, $"away-{s}", MqttProtocolVersion.V311, cleanSession: false);
            var next = 0;
            while (next < acknowledged.Count)
            {
                var message = await back.ReceiveAsync();
                if (message.Topic == "flood/one")
                {
                    Assert.Equal(acknowledged[next++], message.ConvertPayloadToString());
                }
            }
        }

        // With the sessions drained, publishers are served again.
        await WaitFor.ConditionAsync(() => !gateway.Services.GetRequiredService<Gateway.Routing.MemoryBudget>().IsFull, "the budget to empty");
        Assert.True((await publisher.PublishAsync("flood/one", "after")).IsSuccess);
    }

    private static async Task PublishAllAsync(int port, int publisher)
    {
        await using var client = await MqttTestClient.ConnectAsync(port);
        var inFlight = new List<Task<MqttClientPublishResult>>(64);
        for (var seq = 0; seq < PerPublisher; seq++)
        {
            var body = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{publisher}:{seq}:").PadRight(100, '.'));
            inFlight.Add(client.PublishAsync(new MqttApplicationMessageBuilder()
                .WithTopic($"t/{publisher}")
                .WithPayload(body)
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                .Build()));
            if (inFlight.Count == inFlight.Capacity || seq == PerPublisher - 1)
            {
                foreach (var publish in inFlight)
                {
                    var result = await publish;
                    Assert.True(result.IsSuccess, result.ReasonCode.ToString());
                }

                inFlight.Clear();
            }
        }
    }

    private static int IndexOf(MqttApplicationMessage message)
    {
        var text = message.ConvertPayloadToString();
        var parts = text.Split(':');
        return (int.Parse(parts[0], CultureInfo.InvariantCulture) * PerPublisher) + int.Parse(parts[1], CultureInfo.InvariantCulture);
    }

    // The pace of a reader on a poor link; the pause is the behaviour under test, not a wait for state.
    private static async Task ReadSlowlyAsync(RawSocketClient client, CancellationToken cancellationToken)
    {
        var buffer = new byte[1024];
        try
        {
            while (await client.ReadSomeAsync(buffer, cancellationToken) > 0)
            {
                await Task.Delay(50, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }
}
