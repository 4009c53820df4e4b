using MQTTnet;
using static Gateway.Interop.Tests.InteropTools;

namespace Gateway.Interop.Tests;

/// <summary>mosquitto_pub and mosquitto_sub (Debian mosquitto-clients) against the gateway.</summary>
[Trait("Category", "Interop")]
public sealed class MosquittoClientTests : IAsyncLifetime
{
    private TestGateway _gateway = null!;

    public async Task InitializeAsync() => _gateway = await TestGateway.StartAsync();

    // mosquitto_sub buffers stdout when it is not a terminal; stdbuf makes it line-buffered so
    // the test sees SUBACK as soon as it happens.
    private static ExternalProcess Sub(string[] args) => ExternalProcess.Start("stdbuf", ["-oL", "mosquitto_sub", .. args]);

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Theory]
    [InlineData("mqttv31", 0)]
    [InlineData("mqttv31", 2)]
    [InlineData("mqttv311", 0)]
    [InlineData("mqttv311", 1)]
    [InlineData("mqttv311", 2)]
    [InlineData("mqttv5", 0)]
    [InlineData("mqttv5", 1)]
    [InlineData("mqttv5", 2)]
    public async Task Mosquitto_pub_to_mosquitto_sub(string version, int qos)
    {
        var topic = $"mosq/{version}/{qos}";
        await using var sub = Sub(Args(
            "-h", "127.0.0.1", "-p", _gateway.MqttPort, "-V", version, "-i", $"sub-{version}-{qos}", "-t", "mosq/#", "-q", 2, "-C", 3, "-v", "-d", "-W", 60));
        await sub.WaitForOutputAsync("SUBACK");

        for (var i = 1; i <= 3; i++)
        {
            await using var pub = ExternalProcess.Start("mosquitto_pub", Args(
                "-h", "127.0.0.1", "-p", _gateway.MqttPort, "-V", version, "-i", $"pub-{version}-{qos}", "-t", topic, "-q", qos, "-m", $"message {i}"));
            Assert.Equal(0, await pub.WaitForExitAsync());
        }

        Assert.Equal(0, await sub.WaitForExitAsync());
        var lines = sub.Output.Split('\n').Where(l => l.StartsWith(topic + " ", StringComparison.Ordinal)).ToList();
        Assert.Equal([$"{topic} message 1", $"{topic} message 2", $"{topic} message 3"], lines);
        Assert.Contains($"PUBLISH (d0, q{qos}", sub.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Retained_message_from_mosquitto_pub_reaches_a_later_mosquitto_sub()
    {
        await using (var pub = ExternalProcess.Start("mosquitto_pub", Args("-h", "127.0.0.1", "-p", _gateway.MqttPort, "-t", "mosq/state", "-m", "closed", "-r", "-q", 1)))
        {
            Assert.Equal(0, await pub.WaitForExitAsync());
        }

        await using var sub = Sub(Args("-h", "127.0.0.1", "-p", _gateway.MqttPort, "-t", "mosq/state", "-C", 1, "-v", "-d", "-W", 60));
        Assert.Equal(0, await sub.WaitForExitAsync());
        Assert.Contains("mosq/state closed", sub.Output, StringComparison.Ordinal);
        Assert.Contains("r1", sub.Output, StringComparison.Ordinal); // delivered with the retain flag
    }

    [Fact]
    public async Task Will_of_a_killed_mosquitto_sub_is_published()
    {
        await using var watcher = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await watcher.SubscribeAsync("mosq/wills/#");
        await using var doomed = Sub(Args(
            "-h", "127.0.0.1", "-p", _gateway.MqttPort, "-i", "doomed", "-t", "mosq/never", "-d",
            "--will-topic", "mosq/wills/doomed", "--will-payload", "lost contact", "--will-qos", 1));
        await doomed.WaitForOutputAsync("SUBACK");

        doomed.Signal(9);

        var will = await watcher.ReceiveAsync();
        Assert.Equal("mosq/wills/doomed", will.Topic);
        Assert.Equal("lost contact", will.ConvertPayloadToString());
    }

    [Fact]
    public async Task Mosquitto_sub_over_mqtt5_sees_properties_from_mosquitto_pub()
    {
        await using var sub = Sub(Args(
            "-h", "127.0.0.1", "-p", _gateway.MqttPort, "-V", "mqttv5", "-t", "mosq/props", "-C", 1, "-F", "%t %p ct=%C rt=%R up=%P", "-d", "-W", 60));
        await sub.WaitForOutputAsync("SUBACK");

        await using (var pub = ExternalProcess.Start("mosquitto_pub", Args(
            "-h", "127.0.0.1", "-p", _gateway.MqttPort, "-V", "mqttv5", "-t", "mosq/props", "-m", "{}", "-q", 1,
            "-D", "publish", "content-type", "application/json",
            "-D", "publish", "response-topic", "mosq/replies",
            "-D", "publish", "user-property", "site", "north")))
        {
            Assert.Equal(0, await pub.WaitForExitAsync());
        }

        Assert.Equal(0, await sub.WaitForExitAsync());
        Assert.Contains("mosq/props {} ct=application/json rt=mosq/replies up=site:north", sub.Output, StringComparison.Ordinal);
    }
}
