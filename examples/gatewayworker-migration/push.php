<?php
// Pushing from anywhere (a web request, a cron job, a queue consumer), as GatewayWorker's
// GatewayClient does: one user, one group, or everyone, through the relay's server API.
//
//   FANOUT_API_KEY=... php push.php user alice '{"type":"notice","text":"your order shipped"}'
//   FANOUT_API_KEY=... php push.php group room:lobby '{"type":"say","from":"system","text":"maintenance at 2"}'
//   FANOUT_API_KEY=... php push.php all '{"type":"ping"}'
//   FANOUT_API_KEY=... php push.php batch        # a user and a group in one request (Gateway::batch)
//
// Prints what the API answered: how many connections the message was queued to.

require __DIR__ . '/Gateway.php';

Gateway::$apiUrl = getenv('FANOUT_API_URL') ?: 'http://127.0.0.1:8081';
Gateway::$apiKey = getenv('FANOUT_API_KEY') ?: '';

[$self, $to, $target, $json] = $argv + [null, '', '', '{}'];
$message = json_decode($to === 'all' ? $target : $json, true);
if ($to !== 'batch' && $message === null) {
    fwrite(STDERR, "usage: php push.php user UID JSON | group TOPIC JSON | all JSON | batch\n");
    exit(2);
}
try {
    switch ($to) {
        case 'user':
            printf("delivered %d\n", Gateway::sendToUid($target, $message));
            break;
        case 'group':
            printf("delivered %d\n", Gateway::sendToGroup($target, $message));
            break;
        case 'all':
            printf("delivered %d\n", Gateway::sendToAll($message));
            break;
        case 'batch':
            $results = Gateway::batch(function () {
                Gateway::sendToUid('alice', ['type' => 'notice', 'text' => 'batched to alice']);
                Gateway::sendToGroup('room:lobby', ['type' => 'notice', 'text' => 'batched to the room']);
            });
            printf("delivered %s\n", implode(' ', array_map(fn ($r) => $r['delivered'] ?? '?', $results)));
            break;
        default:
            fwrite(STDERR, "usage: php push.php user UID JSON | group TOPIC JSON | all JSON | batch\n");
            exit(2);
    }
} catch (RuntimeException $e) {
    fwrite(STDERR, $e->getMessage() . "\n");
    exit(1);
}
