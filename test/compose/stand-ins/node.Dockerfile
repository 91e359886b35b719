# Stand-in for node:20-bookworm-slim (no registry is reachable here), built by build.sh under that name.
# The real image is Debian 12 slim with Node 20 in /usr/local (node, npm, npx) and the user node (uid 1000,
# home /home/node); so is this one. Node itself is this machine's Node 20 (build.sh copies it into the
# build context): Debian's own nodejs is 18. NODE_EXTRA_CA_CERTS is this machine's addition: npm reaches
# its registry through a proxy whose CA only the system trust store holds.
FROM ecomstream-standin-base:bookworm

RUN set -eux; \
    groupadd --gid 1000 node; \
    useradd --uid 1000 --gid node --shell /bin/bash --create-home node
COPY node/bin/node /usr/local/bin/node
COPY node/lib/node_modules /usr/local/lib/node_modules
COPY node-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN set -eux; \
    ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm; \
    ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx; \
    if [ -d /usr/local/lib/node_modules/corepack ]; then ln -s ../lib/node_modules/corepack/dist/corepack.js /usr/local/bin/corepack; fi; \
    node --version; npm --version

ENV NODE_VERSION_MAJOR=20 NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["node"]
