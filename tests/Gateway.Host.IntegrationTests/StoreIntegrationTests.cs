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
