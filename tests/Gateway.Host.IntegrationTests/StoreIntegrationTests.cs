using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Protocol;

namespace Gateway.Host.IntegrationTests;

[Trait("Category", "Integration")]
public sealed class RetainedPersistenceTests
{
    [Fact]
    public async Task Retained_messages_survive_a_restart_and_cleared_ones_stay_cleared()
    {
        using var data = new TempDirectory();
        await using (var gateway = await TestGateway.StartAsync($"--Storage:DataDirectory={data.Path}"))
        {
            await using var publisher = await MqttTestClient.ConnectAsync(gateway.MqttPort);
            await publisher.PublishAsync(new MqttApplicationMessageBuilder()
                .WithTopic("status/pump").WithPayload("running").WithRetainFlag()
                .WithContentType("text/plain").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.ExactlyOnce).Build());
            await publisher.PublishAsync("status/old", "stale", retain: true);
            await publisher.PublishAsync("status/old", string.Empty, retain: true);
        }

        await using var restarted = await TestGateway.StartAsync($"--Storage:DataDirectory={data.Path}");
        await using var subscriber = await MqttTestClient.ConnectAsync(restarted.MqttPort);
        await subscriber.SubscribeAsync("status/#", MqttQualityOfServiceLevel.ExactlyOnce);

        var retained = await subscriber.ReceiveAsync();
        Assert.Equal("status/pump", retained.Topic);
        Assert.Equal("running", retained.ConvertPayloadToString());
        Assert.True(retained.Retain);
        Assert.Equal("text/plain", retained.ContentType);
        Assert.Equal(MqttQualityOfServiceLevel.ExactlyOnce, retained.QualityOfServiceLevel);
        await subscriber.AssertNothingMoreAsync();
    }
}

[Trait("Category", "Integration")]
public sealed class PipelinedPublishTests
{
    // One connection with 1,000 QoS 1 publishes in flight at once into an uplink's durable
    // queue (its cloud unreachable): every PUBACK comes back, each only after its own commit, so
    // all 1,000 are in the queue in publish order after a restart.
    [Theory]
    [InlineData(MQTTnet.Formatter.MqttProtocolVersion.V311)]
    [InlineData(MQTTnet.Formatter.MqttProtocolVersion.V500)]
    public async Task Many_publishes_in_flight_on_one_connection_are_all_acknowledged_and_all_stored_in_order(MQTTnet.Formatter.MqttProtocolVersion version)
    {
        using var data = new TempDirectory();
        string[] args =
        [
            $"--Storage:DataDirectory={data.Path}",
            $"--Uplinks:cloud:Endpoints:0=mqtt://127.0.0.1:{MosquittoBroker.FreePort()}",
            "--Uplinks:cloud:Forward:0:Filter=sensors/#",
        ];
        const int Count = 1000;
        await using (var gateway = await TestGateway.StartAsync(args))
        {
            await using var sensor = await MqttTestClient.ConnectAsync(gateway.MqttPort, version: version);
            var publishes = Enumerable.Range(1, Count)
                .Select(i => sensor.PublishAsync("sensors/flow", i.ToString(System.Globalization.CultureInfo.InvariantCulture)))
                .ToArray();
            var results = await Task.WhenAll(publishes);
            Assert.All(results, r => Assert.True(r.IsSuccess, r.ReasonCode.ToString()));
        }

        await using var restarted = await TestGateway.StartAsync(args);
        var queue = restarted.Services.GetRequiredService<Gateway.Routing.MessageRouter>().GetQueue("uplink.cloud");
        Assert.Equal(Count, queue.ReadyCount);
        using var consumer = queue.AddConsumer(new Gateway.Routing.ConsumerOptions { Prefetch = Count, AutoAck = true });
        var numbers = new List<int>(Count);
        while (numbers.Count < Count && await consumer.WaitToReadAsync(TestContext.Timeout()))
        {
            while (consumer.TryRead(out var delivery))
            {
                numbers.Add(int.Parse(System.Text.Encoding.UTF8.GetString(delivery.Message.Body.Span), System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        Assert.Equal(Enumerable.Range(1, Count), numbers);
    }
}

[Trait("Category", "Integration")]
public sealed class DamagedStoreTests
{
    [Fact]
    public async Task A_garbage_database_file_is_reported_moved_aside_and_the_gateway_works()
    {
        using var data = new TempDirectory();
        await File.WriteAllBytesAsync(Path.Combine(data.Path, "gateway.db"), Enumerable.Repeat((byte)0x5A, 40_000).ToArray());

        await using var gateway = await TestGateway.StartAsync($"--Storage:DataDirectory={data.Path}");
        gateway.ExpectErrors(e => e.EventId.Id == 4001);

        Assert.Contains(gateway.Logs.Entries, e => e.EventId.Id == 4001 && e.Level == Microsoft.Extensions.Logging.LogLevel.Critical);
        Assert.Single(Directory.GetFiles(data.Path, "gateway.db.damaged-*"));
        await using var client = await MqttTestClient.ConnectAsync(gateway.MqttPort);
        await client.PublishAsync("after/damage", "kept", retain: true);
        await client.SubscribeAsync("after/#");
        Assert.Equal("kept", (await client.ReceiveAsync()).ConvertPayloadToString());
    }
}
