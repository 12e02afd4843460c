# Installs the web tree at build time (RUN sh /cfg2/provision-httpd.sh).
# Least privilege: $HTTPD_USER can read the pages and run the CGI, nobody can write under
# $HTTPD_ROOT. cp + chmod instead of `install -m`: Debian's static busybox has no install.
set -eu
mkdir -p "$HTTPD_ROOT"/cgi-bin
cp /cfg2/index.html "$HTTPD_ROOT"/index.html
chmod 400 "$HTTPD_ROOT"/index.html
cp /cfg2/hello-world.cgi "$HTTPD_ROOT"/cgi-bin/hello-world
chmod 500 "$HTTPD_ROOT"/cgi-bin/hello-world
cp /cfg2/from-api.cgi "$HTTPD_ROOT"/cgi-bin/from-api
chmod 500 "$HTTPD_ROOT"/cgi-bin/from-api
chgrp -R "$HTTPD_USER" "$HTTPD_ROOT"
chmod -R g+rX,a-w "$HTTPD_ROOT"
# The CGI runs my-app's script as $HTTPD_USER.
chgrp "$HTTPD_USER" /cfg /cfg/hello-world
chmod g+x /cfg
chmod g+rx /cfg/hello-world
