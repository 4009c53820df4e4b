using System.Globalization;
using System.Net;
using Gateway.Routing;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Protocol;

namespace Gateway.Host.IntegrationTests;

/// <summary>Retained messages under hostile traffic: very long topics, more than memory holds, a failed load.</summary>
[Trait("Category", "Integration")]
public sealed class RetainedLimitsTests
{
    private static string Topic(int bytes) => "long/" + new string('t', bytes - 5);

    private static MqttApplicationMessage Retained(string topic, string payload) => new MqttApplicationMessageBuilder()
        .WithTopic(topic).WithPayload(payload).WithRetainFlag().WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();

    // A client sends a retained message on a 1,105-byte topic over and over while four others
    // publish QoS 1 into an uplink's durable queue: every publish of every client is stored and
    // acknowledged, the uplink's backlog counts exactly the innocent ones, and after a restart the
    // long topics (up to MQTT's 65,535 bytes) are served with their last message.
    [Fact]
    public async Task A_long_retained_topic_next_to_QoS_1_publishers_fails_nobody_and_is_served_after_a_restart()
    {
        using var data = new TempDirectory();
        string[] args =
        [
            $"--Storage:DataDirectory={data.Path}",
            $"--Uplinks:cloud:Endpoints:0=mqtt://127.0.0.1:{MosquittoBroker.FreePort()}",
            "--Uplinks:cloud:Forward:0:Filter=sensors/#",
        ];
        var longTopic = Topic(1105);
        var longest = Topic(65_535);
        const int Publishers = 4, EachPublishes = 250, RetainedPublishes = 300;
        await using (var gateway = await TestGateway.StartAsync(args))
        {
            await using var hostile = await MqttTestClient.ConnectAsync(gateway.MqttPort);
            var sensors = await Task.WhenAll(Enumerable.Range(0, Publishers).Select(_ => MqttTestClient.ConnectAsync(gateway.MqttPort)));
            var retained = Task.Run(async () =>
            {
                var results = new List<MqttClientPublishResult>();
                for (var i = 1; i <= RetainedPublishes; i++)
                {
                    results.Add(await hostile.PublishAsync(Retained(longTopic, i.ToString(CultureInfo.InvariantCulture))));
                }

                return results;
            });
            var innocent = sensors.SelectMany((sensor, s) => Enumerable.Range(0, EachPublishes)
                .Select(i => sensor.PublishAsync($"sensors/{s}", i.ToString(CultureInfo.InvariantCulture)))).ToList();

            Assert.All(await Task.WhenAll(innocent), r => Assert.True(r.IsSuccess, r.ReasonCode.ToString()));
            Assert.All(await retained, r => Assert.True(r.IsSuccess, r.ReasonCode.ToString()));
            Assert.True((await hostile.PublishAsync(Retained(longest, "longest"))).IsSuccess);
            var queue = gateway.Services.GetRequiredService<MessageRouter>().GetQueue("uplink.cloud");
            Assert.Equal(Publishers * EachPublishes, queue.GetStatistics().Ready + queue.GetStatistics().Unacknowledged);
            foreach (var sensor in sensors)
            {
                await sensor.DisposeAsync();
            }
        }

        await using var restarted = await TestGateway.StartAsync(args);
        await using var subscriber = await MqttTestClient.ConnectAsync(restarted.MqttPort);
        await subscriber.SubscribeAsync("long/#");
        var served = new[] { await subscriber.ReceiveAsync(), await subscriber.ReceiveAsync() }.ToDictionary(m => m.Topic, m => m.ConvertPayloadToString());
        Assert.Equal(RetainedPublishes.ToString(CultureInfo.InvariantCulture), served[longTopic]);
        Assert.Equal("longest", served[longest]);
        Assert.Equal(Publishers * EachPublishes, restarted.Services.GetRequiredService<MessageRouter>().GetQueue("uplink.cloud").ReadyCount);
    }

    // Retained messages beyond Mqtt:MaxRetainedMessages are refused when published (MQTT 5:
    // 0x97), clearing one is always accepted and makes room, and after a restart a '#'
    // subscriber gets exactly the accepted ones. (Mqtt:MaxRetainedBytes works the same way; the
    // default limits were checked by hand with 100,000 1 KiB messages.)
    [Fact]
    public async Task Retained_messages_over_the_limit_are_refused_when_published_and_exactly_the_accepted_ones_are_served_after_a_restart()
    {
        using var data = new TempDirectory();
        const int Limit = 2000, Published = 2500, Connections = 4;
        string[] args = [$"--Storage:DataDirectory={data.Path}", $"--Mqtt:MaxRetainedMessages={Limit}"];
        var payload = new string('p', 1024);
        var accepted = new HashSet<string>(StringComparer.Ordinal);
        await using (var gateway = await TestGateway.StartAsync(args))
        {
            var publishers = await Task.WhenAll(Enumerable.Range(0, Connections).Select(_ => MqttTestClient.ConnectAsync(gateway.MqttPort)));
            var topics = Enumerable.Range(0, Published).Select(i => $"status/{i}").ToList();
            var results = await Task.WhenAll(topics.Select((topic, i) => publishers[i % Connections].PublishAsync(Retained(topic, payload))));

            Assert.All(results, r => Assert.True(r.ReasonCode is MqttClientPublishReasonCode.Success or MqttClientPublishReasonCode.NoMatchingSubscribers or MqttClientPublishReasonCode.QuotaExceeded, r.ReasonCode.ToString()));
            accepted.UnionWith(topics.Where((_, i) => results[i].IsSuccess));
            Assert.Equal(Limit, accepted.Count);
            Assert.Equal(Published - Limit, results.Count(r => r.ReasonCode == MqttClientPublishReasonCode.QuotaExceeded));

            // At the limit: clearing is accepted and makes room for a new topic.
            var cleared = accepted.First();
            Assert.True((await publishers[0].PublishAsync(Retained(cleared, string.Empty))).IsSuccess);
            accepted.Remove(cleared);
            Assert.True((await publishers[0].PublishAsync(Retained("status/new", "n"))).IsSuccess);
            accepted.Add("status/new");
            Assert.Equal(MqttClientPublishReasonCode.QuotaExceeded, (await publishers[0].PublishAsync(Retained("status/newer", "n"))).ReasonCode);

            // MQTT 3.1.1 has no reason code: the publisher is not acknowledged and loses the connection.
            await using (var old = await MqttTestClient.ConnectAsync(gateway.MqttPort, version: MQTTnet.Formatter.MqttProtocolVersion.V311))
            {
                await Assert.ThrowsAnyAsync<Exception>(() => old.PublishAsync(Retained("status/old", "o")));
            }

            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{gateway.HttpPort}") };
            var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
            Assert.Contains($"gateway_mqtt_retained_messages {Limit}", metrics, StringComparison.Ordinal);
            Assert.Contains($"gateway_mqtt_retained_refused_total{{reason=\"max-messages\"}} {Published - Limit + 2}", metrics, StringComparison.Ordinal);
            foreach (var publisher in publishers)
            {
                await publisher.DisposeAsync();
            }
        }

        await using var restarted = await TestGateway.StartAsync(args);
        await using var subscriber = await MqttTestClient.ConnectAsync(restarted.MqttPort);
        await subscriber.SubscribeAsync("#");
        var served = new HashSet<string>(StringComparer.Ordinal);
        while (served.Count < Limit)
        {
            var message = await subscriber.ReceiveAsync();
            Assert.True(message.Retain);
            Assert.True(served.Add(message.Topic), message.Topic);
        }

        Assert.Equal(accepted.Order(StringComparer.Ordinal), served.Order(StringComparer.Ordinal));
        await subscriber.AssertNothingMoreAsync();
    }

    [Fact]
    public async Task A_failed_retained_load_is_logged_as_critical_and_reported_by_healthz()
    {
        await using var gateway = await TestGateway.StartAsync(
            builder => builder.Services.AddSingleton<IRetainedMessageStore, UnreadableRetainedStore>());
        gateway.ExpectErrors(e => e.EventId.Id == 1051);

        Assert.Contains(gateway.Logs.Entries, e => e.EventId.Id == 1051 && e.Level == Microsoft.Extensions.Logging.LogLevel.Critical);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{gateway.HttpPort}") };
        using var response = await http.GetAsync(new Uri("/healthz", UriKind.Relative));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("retained messages not loaded", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private sealed class UnreadableRetainedStore : IRetainedMessageStore
    {
        public ValueTask SetRetainedAsync(string topic, GatewayMessage? message, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public async IAsyncEnumerable<KeyValuePair<string, GatewayMessage>> ReadRetainedAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.Yield();
            yield return new("a", new GatewayMessage("amq.topic", "a", new byte[] { 1 }));
            throw new InsufficientMemoryException("the retained messages do not fit");
        }

        public ValueTask ClearRetainedAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }
}

/// <summary>/healthz while the store refuses messages for the free-disk reserve.</summary>
[Trait("Category", "Integration")]
public sealed class LowDiskHealthTests
{
    [Fact]
    public async Task Healthz_says_503_naming_the_reserve_while_the_disk_is_under_it_and_200_once_space_returns()
    {
        long free = long.MaxValue;
        await using var gateway = await TestGateway.StartAsync(
            builder => builder.Services.AddSingleton<Gateway.Storage.FreeSpaceProbe>(_ => Interlocked.Read(ref free)));
        gateway.ExpectErrors(e => e.EventId.Id == 4010);
        var store = gateway.Services.GetRequiredService<Gateway.Storage.LiteDbMessageStore>();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{gateway.HttpPort}") };

        Interlocked.Exchange(ref free, 0);
        await WaitFor.ConditionAsync(() => store.LowOnDisk, "the store to see the disk under the reserve");
        using (var low = await http.GetAsync(new Uri("/healthz", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, low.StatusCode);
            Assert.Contains("Storage:MinFreeMegabytes", await low.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Interlocked.Exchange(ref free, long.MaxValue);
        await WaitFor.ConditionAsync(() => !store.LowOnDisk, "the store to see space again");
        using var healthy = await http.GetAsync(new Uri("/healthz", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
    }
}
