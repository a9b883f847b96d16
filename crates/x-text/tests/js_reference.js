// X's JavaScript reference library (npm twitter-text 3.1.0) on every text of a JSON-lines
// file: one JSON line out per text, [weightedLength, valid, urls, mentions, hashtags, cashtags].
// Run by tests/js_reference.rs with NODE_PATH pointing at the library's node_modules.
const tt = require('twitter-text');
const lines = require('fs').readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean);
for (const line of lines) {
  const text = JSON.parse(line);
  const parsed = tt.parseTweet(text);
  console.log(JSON.stringify([
    parsed.weightedLength,
    parsed.valid,
    tt.extractUrls(text),
    tt.extractMentions(text),
    tt.extractHashtags(text),
    tt.extractCashtags(text),
  ]));
}
