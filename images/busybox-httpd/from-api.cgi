#!/bin/sh
# What `inv up` adds to the tutorial's server: data fetched by name from the api service,
# over the project network (the api publishes no port on the host).
escape_html() {
    echo "$1" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g; s/"/\&quot;/g; '"s/'/\&#39;/g"
}
api=${API_URL:-http://api:8081/cgi-bin/visits}
if answer=$(wget -q -O - "$api" 2>&1); then
    said="The api service says: $answer"
else
    said="The api service does not answer at $api (start it with: inv up)"
fi

cat <<EOF2
Content-Type: text/html

<html>
<title>From the API</title>
<body>
<h4>$(escape_html "$said")</h4>
</body></html>
EOF2
